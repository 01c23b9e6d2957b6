// An echo bot: replies to every text message with the same text and to /start
// with a greeting.
//
//   echo_bot --token 123:ABC [--api-url https://api.telegram.org] [--flood-control off]
//            [--journal sqlite:///echo.db | --offsets memory] [--max-in-flight 32]
//            [--delete-webhook on]
//            [--webhook-port 8443 --webhook-url URL --webhook-secret S [--webhook-reply on]]
//   BOT_TOKEN=123:ABC SLUICE_API_URL=http://127.0.0.1:8081 echo_bot
//
// --flood-control off turns off the client's flood control, which keeps
// sends within Telegram's limits. Use it only against a server without
// them, such as sluice-sandbox --no-flood-limits in benchmarks.
//
// --offsets URL keeps the confirmed offset in that database, by default
// the file sluice-updates.db in the working directory, so a restart skips
// what was handled. --offsets memory keeps it in memory.
//
// --journal URL stores each batch of updates in a database (an sqlite:///
// or postgresql:// URL), with the offset, and confirms it to Telegram once
// stored, so the next batch is fetched while this one is handled. A
// restart handles what the journal still contains.
//
// --delete-webhook on deletes a webhook left set by an earlier run before
// long polling starts. Telegram keeps the updates it holds.
//
// --webhook-port receives updates by webhook on 127.0.0.1 instead of long
// polling, after setWebhook with --webhook-url (max_connections 100).
// --webhook-reply on sends each echo in the reply to the webhook request.
//
// Without a token it starts an in-process sluice sandbox on 127.0.0.1,
// sends the bot a few messages from simulated users, checks the echoes,
// prints one line and exits (0 when every echo arrived in order).

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sluice/db/database.hpp>
#include <sluice/dispatch/bot.hpp>
#include <sluice/dispatch/webhook_reply.hpp>
#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/flags.hpp>
#include <sluice/runtime/shutdown.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/sandbox/sandbox.hpp>
#include <sluice/telegram/bot_api.hpp>
#include <sluice/telegram/token.hpp>
#include <sluice/updates/webhook.hpp>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::dispatch::Bot;
using sluice::dispatch::BotOptions;
using sluice::dispatch::Context;
using sluice::dispatch::Router;

namespace {

constexpr std::int64_t kFirstUserId = 100000001;
constexpr int kDemoUsers = 3;
const std::vector<std::string> kDemoTexts = {"/start", "hello", "how are you?", "bye"};

// With `in_webhook_reply`, the echo travels in the reply to the webhook
// request when the update came by webhook.
Router make_router(bool in_webhook_reply = false) {
  Router router("echo");
  router.on_command("start", [](Context& ctx) -> asio::awaitable<void> {
    co_await ctx.reply("Hello! Send me any text and I will send it back.");
  });
  if (in_webhook_reply) {
    router.on_message(sluice::dispatch::filters::has_text(), [](Context& ctx) -> asio::awaitable<void> {
      sluice::telegram::SendMessage echo{.chat_id = *ctx.chat_id(), .text = std::string(ctx.text())};
      co_await sluice::dispatch::call_in_webhook_reply(ctx, std::move(echo));
    });
    return router;
  }
  router.on_message(sluice::dispatch::filters::has_text(), [](Context& ctx) -> asio::awaitable<void> {
    co_await ctx.reply(std::string(ctx.text()));
  });
  return router;
}

struct Flags {
  std::string token;
  std::string api_url;
  /// PEM file of extra CA certificates to trust for https:// API roots.
  std::string ca_file;
  bool flood_control = true;
  std::string journal;
  /// A database URL, "memory", or empty for the Bot's default.
  std::string offsets;
  std::size_t max_in_flight = 32;
  std::optional<std::uint16_t> webhook_port;
  std::string webhook_url;
  std::string webhook_secret;
  bool webhook_reply = false;
  bool delete_webhook = false;
  /// Options other than --token given on the command line. The self-check
  /// (no token) takes none.
  std::vector<std::string> other_options;
  bool help = false;
};

constexpr std::string_view kUsage =
    "usage: echo_bot [--token TOKEN] [--api-url URL [--ca-file PEM]] [--flood-control on|off]\n"
    "                [--journal URL | --offsets URL|memory] [--max-in-flight N]\n"
    "                [--webhook-port N --webhook-secret S [--webhook-url URL]\n"
    "                [--webhook-reply on|off]] [--delete-webhook on|off]\n"
    "  --token TOKEN          bot token (or BOT_TOKEN); without one, runs a self-check\n"
    "                         against an in-process sandbox and exits\n"
    "  --api-url URL          Bot API root (or SLUICE_API_URL); default https://api.telegram.org\n"
    "  --ca-file PEM          also trust the CA certificates in this PEM file, for an https://\n"
    "                         server with its own certificate (a local Bot API server)\n"
    "  --flood-control on|off client-side flood control (default on); off only against a\n"
    "                         server without flood limits\n"
    "  --journal URL          keep received updates in a journal in this database and\n"
    "                         confirm them once stored (long polling only): sqlite:///rel.db\n"
    "                         (relative path), sqlite:////abs/path.db or postgresql://...;\n"
    "                         default none (confirm once handled)\n"
    "  --offsets URL|memory   where the confirmed offset is kept without --journal: a\n"
    "                         database URL as for --journal, or memory (a restart receives\n"
    "                         again what Telegram did not get confirmed); default\n"
    "                         sqlite:///sluice-updates.db in the working directory. A new\n"
    "                         sandbox numbers updates from 1 again: against one, use memory\n"
    "                         or a new file, or the stored offset skips its updates\n"
    "  --max-in-flight N      Bot API requests at once and HTTP connections, 1 to 1024\n"
    "                         (default 32)\n"
    "  --webhook-port N       receive updates by webhook on 127.0.0.1:N (0 to 65535, 0 picks\n"
    "                         one) instead of long polling; needs --webhook-secret\n"
    "  --webhook-url URL      URL passed to setWebhook (max_connections 100); default none\n"
    "                         (the webhook is already set)\n"
    "  --webhook-secret S     the webhook's secret token (1 to 256 of A-Z a-z 0-9 _ -)\n"
    "  --webhook-reply on|off send each echo in the reply to the webhook request (default off)\n"
    "  --delete-webhook on|off\n"
    "                         delete a webhook left set by an earlier run before long\n"
    "                         polling starts (default off)\n"
    "Each option can also be written as --name=VALUE.\n";

// Reads the value of an on|off option.
bool parse_switch(std::string_view name, std::string_view value) {
  if (value != "on" && value != "off") {
    throw std::invalid_argument(fmt::format("invalid value '{}' for {}: expected on or off", value, name));
  }
  return value == "on";
}

// Reads --name VALUE or --name=VALUE pairs; throws std::invalid_argument
// with the message to print for a usage error.
Flags read_flags(int argc, char** argv) {
  Flags flags;
  if (const char* token = std::getenv("BOT_TOKEN")) {
    flags.token = token;
  }
  if (const char* url = std::getenv("SLUICE_API_URL")) {
    flags.api_url = url;
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "--help" || argument == "-h") {
      flags.help = true;
      return flags;
    }
    const std::size_t equals = argument.find('=');
    const std::string_view name = argument.substr(0, equals);
    if (name != "--token" && name != "--api-url" && name != "--ca-file" && name != "--flood-control" &&
        name != "--journal" &&
        name != "--offsets" && name != "--max-in-flight" && name != "--webhook-port" && name != "--webhook-url" &&
        name != "--webhook-secret" && name != "--webhook-reply" && name != "--delete-webhook") {
      throw std::invalid_argument(fmt::format("unknown option {}; see echo_bot --help", name));
    }
    std::string_view value;
    if (equals != std::string_view::npos) {
      value = argument.substr(equals + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw std::invalid_argument(fmt::format("missing value for {}; see echo_bot --help", name));
    }
    if (name != "--token") {
      flags.other_options.emplace_back(name);
    }
    if (name == "--token") {
      if (value.empty()) {
        throw std::invalid_argument(
            "invalid value '' for --token: expected the bot token; leave --token out to run the self-check");
      }
      flags.token = value;
    } else if (name == "--api-url") {
      flags.api_url = value;
    } else if (name == "--ca-file") {
      flags.ca_file = value;
    } else if (name == "--webhook-port") {
      flags.webhook_port = sluice::runtime::parse_integer_flag<std::uint16_t>("webhook-port", value, 0, 65535);
    } else if (name == "--webhook-url") {
      flags.webhook_url = value;
    } else if (name == "--webhook-secret") {
      if (!sluice::updates::is_valid_secret_token(value)) {
        throw std::invalid_argument("invalid value for --webhook-secret: expected 1 to 256 of A-Z a-z 0-9 _ -");
      }
      flags.webhook_secret = value;
    } else if (name == "--webhook-reply") {
      flags.webhook_reply = parse_switch(name, value);
    } else if (name == "--delete-webhook") {
      flags.delete_webhook = parse_switch(name, value);
    } else if (name == "--max-in-flight") {
      flags.max_in_flight = sluice::runtime::parse_integer_flag<std::size_t>("max-in-flight", value, 1, 1024);
    } else if (name == "--journal") {
      // Parsing the URL here makes a malformed one a usage error.
      try {
        sluice::db::DatabaseUrl::parse(value);
      } catch (const sluice::db::UrlError& error) {
        throw std::invalid_argument(fmt::format("invalid value for --journal: {}", error.what()));
      }
      flags.journal = value;
    } else if (name == "--offsets") {
      if (value != "memory") {
        try {
          sluice::db::DatabaseUrl::parse(value);
        } catch (const sluice::db::UrlError& error) {
          throw std::invalid_argument(fmt::format("invalid value for --offsets: {}, or memory", error.what()));
        }
      }
      flags.offsets = value;
    } else {
      flags.flood_control = parse_switch(name, value);
    }
  }
  if (!flags.token.empty()) {
    if (const auto problem = sluice::telegram::check_token(flags.token)) {
      throw std::invalid_argument(fmt::format("invalid token: {}; check --token or BOT_TOKEN", *problem));
    }
  }
  if (!flags.ca_file.empty() && !std::ifstream(flags.ca_file).good()) {
    throw std::invalid_argument(fmt::format("invalid value '{}' for --ca-file: the file cannot be read", flags.ca_file));
  }
  if (!flags.api_url.empty()) {
    if (const auto problem = sluice::telegram::check_base_url(flags.api_url)) {
      throw std::invalid_argument(
          fmt::format("invalid value '{}' for --api-url (or SLUICE_API_URL): {}", flags.api_url, *problem));
    }
  }
  if (!flags.journal.empty() && !flags.offsets.empty()) {
    throw std::invalid_argument("--journal keeps the offset in its own database; drop --offsets");
  }
  if (flags.webhook_port && flags.webhook_secret.empty()) {
    throw std::invalid_argument("--webhook-port needs --webhook-secret");
  }
  if (flags.webhook_port && !flags.journal.empty()) {
    throw std::invalid_argument("--journal applies to long polling only; drop it or --webhook-port");
  }
  if (flags.webhook_port && flags.delete_webhook) {
    throw std::invalid_argument("--delete-webhook applies to long polling only; drop it or --webhook-port");
  }
  if (!flags.webhook_port && (!flags.webhook_url.empty() || !flags.webhook_secret.empty() || flags.webhook_reply)) {
    throw std::invalid_argument("--webhook-url, --webhook-secret and --webhook-reply need --webhook-port");
  }
  if (flags.token.empty() && !flags.other_options.empty()) {
    throw std::invalid_argument(fmt::format(
        "{} needs a token (--token or BOT_TOKEN); without one echo_bot runs its self-check, which takes no options",
        flags.other_options.front()));
  }
  return flags;
}

// Runs against Telegram (or the given server) until SIGINT or SIGTERM.
asio::awaitable<void> run_real(Flags flags) {
  auto executor = co_await asio::this_coro::executor;
  const Router router = make_router(flags.webhook_reply);
  BotOptions options;
  options.api.token = flags.token;
  if (!flags.api_url.empty()) {
    options.api.base_url = flags.api_url;
  }
  options.api.http.extra_ca_file = flags.ca_file;
  options.api.flood.enabled = flags.flood_control;
  options.api.max_in_flight = flags.max_in_flight;
  options.api.http.max_connections_per_host = flags.max_in_flight;
  options.polling.delete_webhook = flags.delete_webhook;
  if (flags.offsets == "memory") {
    options.offset_database.clear();
  } else if (!flags.offsets.empty()) {
    options.offset_database = flags.offsets;
  }

  // SQLite runs its calls on this pool, one thread for the statements and
  // one for WAL checkpoints; it is unused with PostgreSQL.
  sluice::runtime::BlockingPool blocking(2, "journal");
  std::optional<sluice::db::Database> database;
  std::optional<sluice::updates::SqlOffsetStore> store;
  if (!flags.journal.empty()) {
    sluice::db::DatabaseOptions database_options;
    database_options.sqlite.blocking_pool = &blocking;
    database.emplace(executor, flags.journal, database_options);
    // The store keys its rows by the bot id, the token's part before ':'.
    store.emplace(*database, std::to_string(*sluice::telegram::bot_id_of(flags.token)));
    co_await store->create_tables();
    options.offset_store = &*store;
    options.polling.journal = true;
  }

  std::exception_ptr error;
  {
    Bot bot(executor, std::move(options), router);
    sluice::runtime::ShutdownSignals signals(executor, [&bot](int) { bot.stop(); });
    try {
      if (flags.webhook_port) {
        sluice::dispatch::WebhookServerOptions webhook;
        webhook.webhook.secret_token = flags.webhook_secret;
        webhook.server.port = *flags.webhook_port;
        webhook.public_url = flags.webhook_url;
        webhook.max_connections = 100;
        co_await bot.run_webhook(std::move(webhook));
      } else {
        co_await bot.run_polling();
      }
    } catch (...) {
      error = std::current_exception();
    }
    signals.cancel();
  }
  if (database) {
    co_await database->close();
  }
  blocking.join();
  if (error) {
    std::rethrow_exception(error);
  }
}

asio::awaitable<void> run_bot(Bot& bot, std::shared_ptr<std::exception_ptr> error) {
  try {
    co_await bot.run_polling();
  } catch (...) {
    *error = std::current_exception();
  }
}

// Runs the bot against an in-process sandbox and checks its echoes.
asio::awaitable<int> run_demo() {
  auto executor = co_await asio::this_coro::executor;
  sluice::sandbox::SandboxOptions sandbox_options;
  sluice::sandbox::Scenario scenario;
  for (int i = 0; i < kDemoUsers; ++i) {
    sluice::sandbox::User user;
    user.id = kFirstUserId + i;
    user.first_name = fmt::format("User{}", i);
    scenario.users.push_back(user);
  }
  sandbox_options.scenario = scenario;
  sluice::sandbox::Sandbox sandbox(executor, sandbox_options);
  co_await sandbox.start();

  const Router router = make_router();
  BotOptions options;
  options.api.token = sandbox.engine().bot().token;
  options.api.base_url = sandbox.base_url();
  options.polling.timeout = 1s;
  // A new sandbox numbers its updates from the start again.
  options.offset_database.clear();
  Bot bot(executor, std::move(options), router);
  sluice::runtime::TaskSet runner(executor, "echo_bot");
  auto error = std::make_shared<std::exception_ptr>();
  runner.spawn("bot", run_bot(bot, error));

  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kDemoUsers; ++i) {
    for (const std::string& text : kDemoTexts) {
      sandbox.push_message(kFirstUserId + i, 0, text);
    }
  }
  const std::size_t expected = kDemoUsers * kDemoTexts.size();
  const bool all_replied =
      co_await sandbox.wait_for(fmt::format("calls.sendMessage>={}", expected), 10s);
  bot.stop();
  co_await runner.join();

  // Each user's echoes must arrive in the order the texts were sent.
  int wrong = 0;
  for (int i = 0; i < kDemoUsers; ++i) {
    auto calls = sandbox.engine().calls_json("sendMessage", kFirstUserId + i);
    for (std::size_t j = 0; j < kDemoTexts.size(); ++j) {
      const std::string expected_text =
          j == 0 ? "Hello! Send me any text and I will send it back." : kDemoTexts[j];
      if (j >= calls.size() ||
          calls[j].at("params").at("text").as_string() != expected_text) {
        ++wrong;
      }
    }
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  co_await sandbox.stop();

  if (*error) {
    try {
      std::rethrow_exception(*error);
    } catch (const std::exception& failure) {
      fmt::print(stderr, "echo_bot: the bot failed: {}\n", failure.what());
    }
    co_return 1;
  }
  fmt::print("echo_bot: {} messages from {} users echoed in order: {} ({} wrong) in {} ms\n",
             expected, kDemoUsers, all_replied && wrong == 0 ? "yes" : "no", wrong, elapsed.count());
  co_return all_replied && wrong == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr, so stdout carries only the self-check's result line.
  // Set before any module logger exists: they copy the default's sinks.
  spdlog::set_default_logger(spdlog::stderr_color_mt("echo_bot"));
  Flags flags;
  try {
    flags = read_flags(argc, argv);
  } catch (const std::exception& error) {
    fmt::print(stderr, "echo_bot: {}\n", error.what());
    return 2;
  }
  if (flags.help) {
    fmt::print("{}", kUsage);
    return 0;
  }

  asio::io_context io;
  int status = 0;
  std::exception_ptr failure;
  auto on_done = [&](std::exception_ptr error, int result) {
    failure = error;
    status = result;
  };
  if (flags.token.empty()) {
    asio::co_spawn(io, run_demo(), on_done);
  } else {
    asio::co_spawn(io, run_real(flags), [&](std::exception_ptr error) { failure = error; });
  }
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      fmt::print(stderr, "echo_bot: {}\n", error.what());
    }
    return 1;
  }
  return status;
}
