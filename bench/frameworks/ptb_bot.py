"""Echo bot on python-telegram-bot 13 (Debian's python3-python-telegram-bot).

Long polling with the library's defaults (handlers run one at a time on the
dispatcher thread). Reads BOT_TOKEN and API_ROOT (e.g. http://127.0.0.1:8081).
"""
import os
import warnings

warnings.filterwarnings("ignore", message="python-telegram-bot is using upstream urllib3")

from telegram.ext import Filters, MessageHandler, Updater  # noqa: E402


def echo(update, context):
    update.message.reply_text(update.message.text)


def main():
    updater = Updater(
        token=os.environ["BOT_TOKEN"],
        base_url=os.environ["API_ROOT"] + "/bot",
        use_context=True,
    )
    updater.dispatcher.add_handler(MessageHandler(Filters.text, echo))
    updater.start_polling()
    updater.idle()  # returns on SIGTERM or SIGINT after stopping the updater


if __name__ == "__main__":
    main()
