// A signup bot: /signup requests a name, then an email, and keeps the
// conversation in a SQLite file, so a restart in the middle loses nothing.
//
//   BOT_TOKEN=123:ABC signup_bot [signup.db]
//
// Without a token it starts an in-process sluice sandbox on 127.0.0.1,
// has three users start a signup, restarts the bot (new Bot, new storage,
// same file) between their messages, checks the replies, prints one line
// and exits (0 when every signup completed).

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <fmt/format.h>

#include <sluice/db/database.hpp>
#include <sluice/dispatch/bot.hpp>
#include <sluice/fsm/storage.hpp>
#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/shutdown.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/sandbox/sandbox.hpp>
#include <sluice/telegram/token.hpp>
#include <sluice/updates/offset.hpp>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::dispatch::Bot;
using sluice::dispatch::BotOptions;
using sluice::dispatch::Context;
using sluice::dispatch::Router;
namespace filters = sluice::dispatch::filters;

namespace {

constexpr std::int64_t kFirstUserId = 100000001;
constexpr int kDemoUsers = 3;

Router make_router() {
  Router router("signup");
  router.on_command("signup", [](Context& ctx) -> asio::awaitable<void> {
    co_await ctx.state().set_state("signup:name", std::chrono::hours(1));
    co_await ctx.reply("What is your name?");
  });
  router.on_message(filters::in_state("signup:name") && filters::has_text(), [](Context& ctx) -> asio::awaitable<void> {
    boost::json::object values{{"name", std::string(ctx.text())}};
    co_await ctx.state().update_data(std::move(values));
    co_await ctx.state().set_state("signup:email");
    co_await ctx.reply("And your email?");
  });
  router.on_message(filters::in_state("signup:email") && filters::has_text(), [](Context& ctx) -> asio::awaitable<void> {
    std::string text = fmt::format("Signed up {} <{}>", std::string(ctx.state().data().at("name").as_string()),
                                   ctx.text());
    co_await ctx.state().clear();
    co_await ctx.reply(std::move(text));
  });
  router.on_message(filters::no_state(), [](Context& ctx) -> asio::awaitable<void> {
    co_await ctx.reply("Send /signup to start.");
  });
  return router;
}

asio::awaitable<void> poll(Bot& bot, std::shared_ptr<std::exception_ptr> error) {
  try {
    co_await bot.run_polling();
  } catch (...) {
    *error = std::current_exception();
  }
}

// Runs against Telegram until SIGINT or SIGTERM.
asio::awaitable<void> run_real(std::string token, std::string database_path) {
  auto executor = co_await asio::this_coro::executor;
  sluice::runtime::BlockingPool blocking(2);
  sluice::db::DatabaseOptions database_options;
  database_options.sqlite.blocking_pool = &blocking;
  sluice::db::Database database(executor, "sqlite:///" + database_path, database_options);
  sluice::fsm::SqlStorage storage(database);
  co_await storage.create_tables();
  // The confirmed offset lives next to the conversations, keyed by the bot
  // id (the token's digits before ':').
  const std::optional<std::int64_t> bot_id = sluice::telegram::bot_id_of(token);
  if (!bot_id) {
    throw std::invalid_argument(
        "invalid token: a Telegram bot token starts with the bot id and ':' (123456789:AA...)");
  }
  sluice::updates::SqlOffsetStore offsets(database, std::to_string(*bot_id));
  co_await offsets.create_tables();

  const Router router = make_router();
  BotOptions options;
  options.api.token = std::move(token);
  options.fsm_storage = &storage;
  options.offset_store = &offsets;
  Bot bot(executor, std::move(options), router);
  sluice::runtime::ShutdownSignals signals(executor, [&bot](int) { bot.stop(); });
  co_await bot.run_polling();
  signals.cancel();
  co_await storage.close();
  co_await database.close();
  blocking.join();
}

// Starts a Bot with a new SqlStorage on `database_url`, pushes `texts` from
// every demo user, waits for `replies` sendMessage calls in total and stops
// the bot. Returns whether they arrived.
asio::awaitable<bool> run_phase(sluice::sandbox::Sandbox& sandbox, sluice::runtime::BlockingPool& blocking,
                                std::string database_url, std::vector<std::string> texts, std::size_t replies,
                                std::shared_ptr<std::exception_ptr> error) {
  auto executor = co_await asio::this_coro::executor;
  sluice::db::DatabaseOptions database_options;
  database_options.sqlite.blocking_pool = &blocking;
  sluice::db::Database database(executor, database_url, database_options);
  sluice::fsm::SqlStorage storage(database);
  co_await storage.create_tables();

  const Router router = make_router();
  BotOptions options;
  options.api.token = sandbox.engine().bot().token;
  options.api.base_url = sandbox.base_url();
  options.polling.timeout = 1s;
  options.fsm_storage = &storage;
  // A new sandbox numbers its updates from the start again.
  options.offset_database.clear();
  Bot bot(executor, std::move(options), router);
  sluice::runtime::TaskSet runner(executor, "signup_bot");
  runner.spawn("bot", poll(bot, error));
  for (int i = 0; i < kDemoUsers; ++i) {
    for (const std::string& text : texts) {
      sandbox.push_message(kFirstUserId + i, 0, fmt::format(fmt::runtime(text), i));
    }
  }
  const bool replied = co_await sandbox.wait_for(fmt::format("calls.sendMessage>={}", replies), 10s);
  bot.stop();
  co_await runner.join();
  co_await storage.close();
  co_await database.close();
  co_return replied;
}

// Runs the demo against an in-process sandbox, with a restart between the
// name and the email.
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
  // Without flood limits every reply is accepted at once, so the count of
  // sendMessage calls the demo waits for is the count of replies.
  sandbox_options.engine.flood.enabled = false;
  sluice::sandbox::FloodOptions flood;
  flood.enabled = false;
  scenario.flood = flood;
  sandbox_options.scenario = scenario;
  sluice::sandbox::Sandbox sandbox(executor, sandbox_options);
  co_await sandbox.start();

  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / fmt::format("sluice-signup-demo-{}.db", ::getpid());
  const std::string url = "sqlite:///" + file.string();
  sluice::runtime::BlockingPool blocking(2);
  auto error = std::make_shared<std::exception_ptr>();
  std::vector<std::string> first_texts = {"/signup", "Ann{}"};
  const bool first_replied = co_await run_phase(sandbox, blocking, url, std::move(first_texts), 2 * kDemoUsers, error);
  std::vector<std::string> second_texts = {"ann{}@example.org", "hello"};
  const bool second_replied =
      !*error && co_await run_phase(sandbox, blocking, url, std::move(second_texts), 4 * kDemoUsers, error);
  blocking.join();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(file.string() + suffix);
  }

  int wrong = 0;
  for (int i = 0; i < kDemoUsers; ++i) {
    const std::vector<std::string> expected = {"What is your name?", "And your email?",
                                               fmt::format("Signed up Ann{0} <ann{0}@example.org>", i),
                                               "Send /signup to start."};
    auto calls = sandbox.engine().calls_json("sendMessage", kFirstUserId + i);
    for (std::size_t j = 0; j < expected.size(); ++j) {
      if (j >= calls.size() || calls[j].at("params").at("text").as_string() != expected[j]) {
        ++wrong;
      }
    }
  }
  co_await sandbox.stop();

  if (*error) {
    try {
      std::rethrow_exception(*error);
    } catch (const std::exception& failure) {
      fmt::print(stderr, "signup_bot: the bot failed: {}\n", failure.what());
    }
    co_return 1;
  }
  const bool ok = first_replied && second_replied && wrong == 0;
  fmt::print("signup_bot: {} signups completed across a restart: {} ({} wrong replies)\n", kDemoUsers,
             ok ? "yes" : "no", wrong);
  co_return ok ? 0 : 1;
}

constexpr std::string_view kUsage =
    "usage: signup_bot [DATABASE_FILE]\n"
    "  DATABASE_FILE  SQLite file for the conversations (default signup.db); used with BOT_TOKEN\n"
    "Without BOT_TOKEN it runs a self-check against an in-process sandbox and exits.\n";

}  // namespace

int main(int argc, char** argv) {
  std::string database_path = "signup.db";
  for (int i = 1; i < argc; ++i) {
    const std::string_view argument = argv[i];
    if (argument == "--help" || argument == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    }
    if (argument.starts_with('-')) {
      fmt::print(stderr, "signup_bot: unknown option {}; see signup_bot --help\n", argument);
      return 2;
    }
    if (i > 1 || argument.empty()) {
      fmt::print(stderr, "signup_bot: expected at most one argument, a non-empty database file path; "
                         "see signup_bot --help\n");
      return 2;
    }
    database_path = argument;
  }

  const char* token = std::getenv("BOT_TOKEN");
  asio::io_context io;
  int status = 0;
  std::exception_ptr failure;
  if (token == nullptr || *token == '\0') {
    asio::co_spawn(io, run_demo(), [&](std::exception_ptr error, int result) {
      failure = error;
      status = result;
    });
  } else {
    asio::co_spawn(io, run_real(token, std::move(database_path)), [&](std::exception_ptr error) { failure = error; });
  }
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      fmt::print(stderr, "signup_bot: {}\n", error.what());
    }
    return 1;
  }
  return status;
}
