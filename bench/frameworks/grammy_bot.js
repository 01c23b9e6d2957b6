// Echo bot on grammY with @grammyjs/runner (long polling, the runner's
// default concurrency). Reads BOT_TOKEN and API_ROOT (e.g. http://127.0.0.1:8081).
"use strict";
const { Bot } = require("grammy");
const { run } = require("@grammyjs/runner");

const bot = new Bot(process.env.BOT_TOKEN, { client: { apiRoot: process.env.API_ROOT } });
bot.on("message:text", (ctx) => ctx.reply(ctx.message.text));
bot.catch((err) => console.error("grammy_bot: handler failed:", err.message));

const runner = run(bot);
const stop = () => runner.stop().then(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
