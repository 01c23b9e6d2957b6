// Echo bot on Telegraf (long polling with bot.launch()). Reads BOT_TOKEN and
// API_ROOT (e.g. http://127.0.0.1:8081).
"use strict";
const { Telegraf } = require("telegraf");
const { message } = require("telegraf/filters");

const bot = new Telegraf(process.env.BOT_TOKEN, { telegram: { apiRoot: process.env.API_ROOT } });
bot.on(message("text"), (ctx) => ctx.reply(ctx.message.text));
bot.catch((err) => console.error("telegraf_bot: handler failed:", err.message));

bot.launch();
process.once("SIGTERM", () => bot.stop("SIGTERM"));
process.once("SIGINT", () => bot.stop("SIGINT"));
