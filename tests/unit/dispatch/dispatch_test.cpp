// Tests of sluice::dispatch: commands, filters and routing without I/O, and
// Bot against the in-process sandbox on 127.0.0.1.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <sluice/db/database.hpp>
#include <sluice/dispatch/bot.hpp>
#include <sluice/dispatch/dispatcher.hpp>
#include <sluice/dispatch/webhook_reply.hpp>
#include <sluice/http/client.hpp>
#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/sandbox/sandbox.hpp>

#include "support/run_on_loop.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::dispatch::Bot;
using sluice::dispatch::BotOptions;
using sluice::dispatch::Context;
using sluice::dispatch::Router;
namespace filters = sluice::dispatch::filters;

// Upper bound of every test's run time; tests end far sooner.
constexpr std::chrono::seconds kMaxTestTime{60};
constexpr std::chrono::seconds kMaxBacklogTestTime{240};
constexpr std::int64_t kFirstUserId = 100000001;

void run_test(std::chrono::seconds max_time, std::function<asio::awaitable<void>(asio::io_context&)> body) {
  sluice_test::run_on_loop(max_time, body);
}

void run_test(std::function<asio::awaitable<void>(asio::io_context&)> body) {
  run_test(kMaxTestTime, std::move(body));
}

// A sandbox with `users` private chats (ids from kFirstUserId) and no flood
// limits.
sluice::sandbox::SandboxOptions sandbox_options(int users) {
  sluice::sandbox::SandboxOptions options;
  options.engine.flood.enabled = false;
  sluice::sandbox::Scenario scenario;
  for (int i = 0; i < users; ++i) {
    sluice::sandbox::User user;
    user.id = kFirstUserId + i;
    user.first_name = "User" + std::to_string(i);
    scenario.users.push_back(user);
  }
  sluice::sandbox::FloodOptions flood;
  flood.enabled = false;
  scenario.flood = flood;
  options.scenario = scenario;
  return options;
}

BotOptions bot_options(sluice::sandbox::Sandbox& sandbox) {
  BotOptions options;
  options.api.token = sandbox.engine().bot().token;
  options.api.base_url = sandbox.base_url();
  options.api.flood.enabled = false;
  options.api.jitter_seed = 1;
  options.polling.timeout = 1s;
  options.polling.jitter_seed = 1;
  options.shutdown_grace = 5s;
  // Each test starts a new sandbox, which numbers updates from the start.
  options.offset_database.clear();
  return options;
}

// Runs bot.run_polling() in `runner` and stores what escapes it.
asio::awaitable<void> run_bot(Bot& bot, std::shared_ptr<std::exception_ptr> error) {
  try {
    co_await bot.run_polling();
  } catch (...) {
    *error = std::current_exception();
  }
}

std::string rethrow_text(const std::exception_ptr& error) {
  if (!error) {
    return "";
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& exception) {
    return exception.what();
  }
}

// -- commands and filters -----------------------------------------------------

TEST(ParseCommand, NameAndArguments) {
  auto command = sluice::dispatch::parse_command("/start  ref42 x ", "my_bot");
  ASSERT_TRUE(command.has_value());
  EXPECT_EQ(command->name, "start");
  EXPECT_EQ(command->mention, "");
  EXPECT_EQ(command->args, "ref42 x");
}

TEST(ParseCommand, MentionOfThisBot) {
  auto command = sluice::dispatch::parse_command("/help@My_Bot", "my_bot");
  ASSERT_TRUE(command.has_value());
  EXPECT_EQ(command->name, "help");
  EXPECT_EQ(command->mention, "My_Bot");
  EXPECT_EQ(command->args, "");
}

TEST(ParseCommand, MentionOfOtherBotIgnored) {
  EXPECT_FALSE(sluice::dispatch::parse_command("/help@other_bot", "my_bot").has_value());
}

TEST(ParseCommand, PlainTextIsNoCommand) {
  EXPECT_FALSE(sluice::dispatch::parse_command("hello /start", "my_bot").has_value());
  EXPECT_FALSE(sluice::dispatch::parse_command("/", "my_bot").has_value());
  EXPECT_FALSE(sluice::dispatch::parse_command("/@my_bot", "my_bot").has_value());
}

sluice::telegram::Update text_message(std::int64_t update_id, std::int64_t chat_id,
                                      const std::string& chat_type, std::int64_t user_id,
                                      const std::string& text) {
  boost::json::object update{
      {"update_id", update_id},
      {"message",
       {{"message_id", update_id},
        {"date", 0},
        {"chat", {{"id", chat_id}, {"type", chat_type}}},
        {"from", {{"id", user_id}, {"is_bot", false}, {"first_name", "U"}}},
        {"text", text}}}};
  return sluice::telegram::from_json<sluice::telegram::Update>(update);
}

sluice::telegram::Update callback(std::int64_t update_id, std::int64_t user_id, const std::string& data) {
  boost::json::object update{
      {"update_id", update_id},
      {"callback_query",
       {{"id", "q" + std::to_string(update_id)},
        {"from", {{"id", user_id}, {"is_bot", false}, {"first_name", "U"}}},
        {"chat_instance", "ci"},
        {"data", data}}}};
  return sluice::telegram::from_json<sluice::telegram::Update>(update);
}

// Routes `update` through `router` with no Bot API and returns the name of
// the handler that ran ("" when none did).
std::string route(const Router& router, const sluice::telegram::Update& update) {
  asio::io_context io;
  sluice::dispatch::ServiceRegistry services;
  sluice::dispatch::BotEnvironment environment{.api = nullptr, .tasks = nullptr, .services = &services,
                                               .username = "my_bot"};
  std::string ran;
  std::exception_ptr failure;
  auto body = [&]() -> asio::awaitable<void> {
    Context context(update, environment);
    const bool handled = co_await router.route(context);
    if (handled) {
      ran = context.handler_name();
    }
  };
  asio::co_spawn(io, body, [&](std::exception_ptr error) { failure = error; });
  io.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
  return ran;
}

asio::awaitable<void> no_op(Context&) { co_return; }

TEST(Filter, ComposesWithAndOrNot) {
  sluice::dispatch::ServiceRegistry services;
  sluice::dispatch::BotEnvironment environment{.services = &services, .username = "my_bot"};
  const auto update = text_message(1, 42, "private", 7, "hello world");
  Context context(update, environment);
  const auto in_private = filters::chat_type("private");
  const auto from_seven = filters::from_users({7});
  const auto text_is_bye = filters::text_equals("bye");
  EXPECT_TRUE((in_private && from_seven)(context));
  EXPECT_FALSE((in_private && text_is_bye)(context));
  EXPECT_TRUE((text_is_bye || from_seven)(context));
  EXPECT_TRUE((!text_is_bye)(context));
  EXPECT_FALSE((!(in_private || text_is_bye))(context));
  EXPECT_TRUE(filters::text_matches("wor.d")(context));
  EXPECT_FALSE(filters::text_matches("^world")(context));
  EXPECT_TRUE(filters::chat_ids({41, 42})(context));
  EXPECT_FALSE(filters::chat_types({"group", "supergroup"})(context));
  EXPECT_TRUE(filters::any()(context));
}

TEST(Filter, CallbackDataPrefix) {
  sluice::dispatch::ServiceRegistry services;
  sluice::dispatch::BotEnvironment environment{.services = &services, .username = "my_bot"};
  const auto update = callback(2, 7, "vote:yes");
  Context context(update, environment);
  EXPECT_TRUE(filters::callback_data_prefix("vote:")(context));
  EXPECT_FALSE(filters::callback_data_prefix("poll:")(context));
  EXPECT_TRUE(filters::callback_data_equals("vote:yes")(context));
  EXPECT_EQ(context.from()->id, 7);
  EXPECT_FALSE(context.chat_id().has_value());
}

TEST(Router, FirstMatchingHandlerRuns) {
  Router router("main");
  router.on_command("start", no_op, "start");
  router.on_message(filters::text_equals("ping"), no_op, "ping");
  router.on_message(no_op, "fallback");
  router.on_callback_query(filters::callback_data_prefix("vote:"), no_op, "vote");

  EXPECT_EQ(route(router, text_message(1, 5, "private", 5, "/start")), "start");
  EXPECT_EQ(route(router, text_message(2, 5, "private", 5, "/start@my_bot x")), "start");
  EXPECT_EQ(route(router, text_message(3, 5, "private", 5, "/start@other_bot")), "fallback");
  EXPECT_EQ(route(router, text_message(4, 5, "private", 5, "ping")), "ping");
  EXPECT_EQ(route(router, text_message(5, 5, "private", 5, "pong")), "fallback");
  EXPECT_EQ(route(router, callback(6, 5, "vote:1")), "vote");
  EXPECT_EQ(route(router, callback(7, 5, "other")), "");
}

TEST(Router, NestedRouterTakesItsTurn) {
  Router admin("admin");
  admin.on_message(filters::from_users({1}) && filters::any_command(), no_op, "admin command");
  Router router("main");
  router.on_command("start", no_op, "start");
  router.include(std::move(admin));
  router.on_message(no_op, "fallback");

  EXPECT_EQ(route(router, text_message(1, 1, "private", 1, "/start")), "start");
  EXPECT_EQ(route(router, text_message(2, 1, "private", 1, "/ban 5")), "admin command");
  EXPECT_EQ(route(router, text_message(3, 2, "private", 2, "/ban 5")), "fallback");
  const std::vector<std::string> kinds = router.allowed_updates();
  EXPECT_EQ(kinds, std::vector<std::string>{"message"});
}

TEST(Router, ErrorHookCatchesHandlerError) {
  Router inner("inner");
  inner.on_message(
      [](Context&) -> asio::awaitable<void> {
        throw std::runtime_error("boom");
        co_return;
      },
      "thrower");
  std::string caught;
  inner.on_error([&caught](Context& ctx, std::exception_ptr error) -> asio::awaitable<void> {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& exception) {
      caught = ctx.handler_name() + ": " + exception.what();
    }
    co_return;
  });
  Router router("main");
  router.include(std::move(inner));
  EXPECT_EQ(route(router, text_message(1, 1, "private", 1, "x")), "thrower");
  EXPECT_EQ(caught, "thrower: boom");
}

TEST(Router, ErrorWithoutHookEscapes) {
  Router router("main");
  router.on_message([](Context&) -> asio::awaitable<void> {
    throw std::runtime_error("boom");
    co_return;
  });
  EXPECT_THROW(route(router, text_message(1, 1, "private", 1, "x")), std::runtime_error);
}

TEST(Router, MiddlewareWrapsAndCanDrop) {
  Router router("main");
  std::vector<std::string> trace;
  router.use([&trace](Context& ctx, sluice::dispatch::Next next) -> asio::awaitable<void> {
    trace.push_back("before " + std::string(ctx.text()));
    if (ctx.text() == "drop") {
      co_return;
    }
    co_await next();
    trace.push_back("after " + ctx.handler_name());
  });
  router.on_message(no_op, "echo");
  EXPECT_EQ(route(router, text_message(1, 1, "private", 1, "keep")), "echo");
  EXPECT_EQ(route(router, text_message(2, 1, "private", 1, "drop")), "");
  const std::vector<std::string> expected = {"before keep", "after echo", "before drop"};
  EXPECT_EQ(trace, expected);
}

TEST(Context, ServiceLookup) {
  struct Counter {
    int value = 0;
  };
  Counter counter{.value = 3};
  sluice::dispatch::ServiceRegistry services;
  services.add(counter);
  sluice::dispatch::BotEnvironment environment{.services = &services, .username = "my_bot"};
  const auto update = text_message(1, 42, "private", 7, "hi");
  Context context(update, environment);
  EXPECT_EQ(context.service<Counter>().value, 3);
  EXPECT_THROW(context.service<std::string>(), std::out_of_range);
}

// -- Bot against the sandbox --------------------------------------------------

TEST(Bot, RepliesToStartCommand) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();

    Router router;
    router.on_command("start", [](Context& ctx) -> asio::awaitable<void> {
      std::string text = "hi " + std::string(ctx.command_args());
      co_await ctx.reply(std::move(text));
    });
    Bot bot(io.get_executor(), bot_options(sandbox), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    sandbox.push_message(kFirstUserId, 0, "/start ref42");
    const bool replied = co_await sandbox.wait_for("calls.sendMessage>=1", 10s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(replied);
    EXPECT_EQ(rethrow_text(*error), "");
    auto calls = sandbox.engine().calls_json("sendMessage", kFirstUserId);
    EXPECT_EQ(calls.size(), 1u);
    if (!calls.empty()) {
      EXPECT_EQ(calls[0].at("params").at("text").as_string(), "hi ref42");
    }
    EXPECT_EQ(bot.username(), sandbox.engine().bot().username);
    EXPECT_EQ(sandbox.engine().pending_updates(), 0u);
    co_await sandbox.stop();
  });
}


// Runs a bot with `router` against `sandbox` until `done` returns, then
// stops it. Returns what escaped run_polling ("" when nothing did).
struct BotRun {
  std::string error;
};

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

// Polls `condition` every 5 ms until it is true or `limit` passes, and
// returns whether it became true.
asio::awaitable<bool> wait_until(std::function<bool()> condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return false;
    }
    co_await sleep_for(5ms);
  }
  co_return true;
}

// Replies to the message with its own text, so the sandbox can check the
// order of replies per chat.
asio::awaitable<void> reply_in_order(Context& ctx) {
  sluice::telegram::SendMessage request{.chat_id = *ctx.chat_id(), .text = std::string(ctx.text())};
  request.reply_parameters = sluice::telegram::ReplyParameters{.message_id = ctx.message()->message_id};
  co_await ctx.api().send_message(std::move(request));
}

// Checks per-chat order over 1,000 chats, with the journal or without.
void check_per_chat_order(bool journal) {
  run_test([journal](asio::io_context& io) -> asio::awaitable<void> {
    constexpr int kChats = 1000;
    constexpr int kMessagesPerChat = 3;
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(kChats));
    co_await sandbox.start();

    // Each chat's texts are "0", "1" and "2". The handler checks that they
    // arrive in that order and yields in between, so that handlers of
    // different chats interleave.
    std::map<std::int64_t, int> next_expected;
    int sequence_errors = 0;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      const int number = std::stoi(std::string(ctx.text()));
      int& expected = next_expected[*ctx.chat_id()];
      if (number != expected) {
        ++sequence_errors;
      }
      expected = number + 1;
      co_await sleep_for(std::chrono::milliseconds(number % 2));
      co_await reply_in_order(ctx);
    });
    sluice::updates::MemoryOffsetStore store;
    BotOptions options = bot_options(sandbox);
    options.max_concurrent_updates = 256;
    options.api.max_in_flight = 64;
    options.api.http.max_connections_per_host = 64;
    options.offset_store = &store;
    options.polling.journal = journal;
    Bot bot(io.get_executor(), std::move(options), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    for (int round = 0; round < kMessagesPerChat; ++round) {
      for (int chat = 0; chat < kChats; ++chat) {
        sandbox.push_message(kFirstUserId + chat, 0, std::to_string(round));
      }
    }
    const bool all_replied =
        co_await sandbox.wait_for("calls.sendMessage>=" + std::to_string(kChats * kMessagesPerChat), 40s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(all_replied);
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_EQ(sequence_errors, 0);
    EXPECT_TRUE(sandbox.engine().evaluate_condition("order_violations==0"));
    EXPECT_LE(bot.dispatcher().stats().max_running, 256u);
    EXPECT_EQ(bot.dispatcher().stats().active_keys, 0u);
    EXPECT_EQ(bot.dispatcher().stats().handled_total, static_cast<std::uint64_t>(kChats * kMessagesPerChat));
    EXPECT_TRUE(store.journal().empty());
    co_await sandbox.stop();
  });
}

TEST(Bot, KeepsPerChatOrderAcrossThousandChats) { check_per_chat_order(false); }

TEST(Bot, JournalKeepsPerChatOrder) { check_per_chat_order(true); }

TEST(Bot, SlowChatDoesNotDelayOthers) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(11));
    co_await sandbox.start();

    // The first user's handler waits until every other chat was handled.
    int others_handled = 0;
    int others_before_slow_finished = 0;
    asio::steady_timer release(io.get_executor(), std::chrono::steady_clock::time_point::max());
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      if (*ctx.chat_id() == kFirstUserId) {
        co_await release.async_wait(asio::as_tuple(asio::use_awaitable));
        others_before_slow_finished = others_handled;
        co_return;
      }
      if (++others_handled == 10) {
        release.cancel();
      }
    });
    Bot bot(io.get_executor(), bot_options(sandbox), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    sandbox.push_message(kFirstUserId, 0, "slow");
    for (int i = 1; i <= 10; ++i) {
      sandbox.push_message(kFirstUserId + i, 0, "fast");
    }
    const bool confirmed = co_await sandbox.wait_for("all_confirmed", 10s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(confirmed);
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_EQ(others_handled, 10);
    EXPECT_EQ(others_before_slow_finished, 10);
    co_await sandbox.stop();
  });
}

// Telegram's per-chat limit and the client's default budget are both about
// one message per second after a burst of 3. Replies sent as fast as the
// client's budget allows must all arrive inside the server's limit.
TEST(Bot, DefaultFloodControlDrawsNo429) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    auto options = sandbox_options(1);
    options.engine.flood = sluice::sandbox::FloodOptions{};
    options.scenario->flood = sluice::sandbox::FloodOptions{};
    sluice::sandbox::Sandbox sandbox(io.get_executor(), options);
    co_await sandbox.start();

    constexpr int kMessages = 3;
    constexpr int kRepliesPerMessage = 3;
    Router router;
    router.on_message([](Context& ctx) -> asio::awaitable<void> {
      for (int i = 0; i < kRepliesPerMessage; ++i) {
        co_await ctx.reply(std::string(ctx.text()));
      }
    });
    auto flooded = bot_options(sandbox);
    flooded.api.flood = sluice::telegram::FloodOptions{};
    Bot bot(io.get_executor(), flooded, router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    for (int i = 0; i < kMessages; ++i) {
      sandbox.push_message(kFirstUserId, 0, "burst " + std::to_string(i));
    }
    const std::string all_sent = "calls.sendMessage>=" + std::to_string(kMessages * kRepliesPerMessage);
    const bool replied = co_await sandbox.wait_for(all_sent, 30s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(replied);
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_EQ(sandbox.engine().stats().responses_429, 0u);
    co_await sandbox.stop();
  });
}

TEST(Bot, ThrowingHandlerDoesNotStopOthers) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();

    std::vector<std::string> handled;
    Router router;
    router.on_message(
        [&](Context& ctx) -> asio::awaitable<void> {
          handled.emplace_back(ctx.text());
          if (ctx.text() == "boom") {
            throw std::runtime_error("handler failure on purpose");
          }
          co_return;
        },
        "recorder");
    Bot bot(io.get_executor(), bot_options(sandbox), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    sandbox.push_message(kFirstUserId, 0, "one");
    sandbox.push_message(kFirstUserId, 0, "boom");
    const std::int64_t last = sandbox.push_message(kFirstUserId, 0, "three");
    (void)last;
    const bool confirmed = co_await sandbox.wait_for("all_confirmed", 10s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(confirmed);
    EXPECT_EQ(rethrow_text(*error), "");
    const std::vector<std::string> expected = {"one", "boom", "three"};
    EXPECT_EQ(handled, expected);
    EXPECT_EQ(bot.dispatcher().stats().failed_total, 1u);
    EXPECT_EQ(bot.dispatcher().stats().handled_total, 3u);
    co_await sandbox.stop();
  });
}

// Checks that a malformed update becomes a dead letter between two good
// ones, with the journal or without.
void check_dead_letter(bool journal) {
  run_test([journal](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();

    int handled = 0;
    Router router;
    router.on_message([&](Context&) -> asio::awaitable<void> {
      ++handled;
      co_return;
    });
    sluice::updates::MemoryOffsetStore store;
    BotOptions options = bot_options(sandbox);
    options.offset_store = &store;
    options.polling.journal = journal;
    Bot bot(io.get_executor(), std::move(options), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    sandbox.push_message(kFirstUserId, 0, "before");
    // A chat id that is a string does not match the Bot API schema.
    auto bad = boost::json::parse(
                   R"({"message":{"message_id":1,"date":0,"chat":{"id":"oops","type":"private"},"text":"x"}})")
                   .as_object();
    const auto bad_id = sandbox.push_update(bad);
    sandbox.push_message(kFirstUserId, 0, "after");
    const bool confirmed = co_await sandbox.wait_for("all_confirmed", 10s);
    // With the journal an update is confirmed once stored, before it is
    // handled, so confirmation alone does not mean both were handled.
    std::function<bool()> both_handled = [&handled] { return handled == 2; };
    const bool handled_in_time = co_await wait_until(both_handled, 10s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(confirmed);
    EXPECT_TRUE(handled_in_time);
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_EQ(handled, 2);
    EXPECT_TRUE(bad_id.has_value());
    EXPECT_EQ(store.dead_letters().size(), 1u);
    if (bad_id && store.dead_letters().size() == 1) {
      EXPECT_EQ(store.dead_letters()[0].update_id, *bad_id);
      EXPECT_NE(store.dead_letters()[0].raw_json.find("oops"), std::string::npos);
      EXPECT_NE(store.dead_letters()[0].error.find("chat.id"), std::string::npos);
      EXPECT_EQ(store.offset(), *bad_id + 2);
    }
    EXPECT_TRUE(store.journal().empty());
    co_await sandbox.stop();
  });
}

TEST(Bot, MalformedUpdateBecomesDeadLetter) { check_dead_letter(false); }

TEST(Bot, JournalKeepsDeadLetters) { check_dead_letter(true); }

// A backlog of 100,000 updates, as after a long downtime, fed as fast as
// the dispatcher takes them: the handlers at once and the updates held
// (the memory bound) never exceed their limits, and each chat keeps its
// order.
TEST(Dispatcher, HundredThousandBacklogStaysBounded) {
  run_test(kMaxBacklogTestTime, [](asio::io_context& io) -> asio::awaitable<void> {
    constexpr std::int64_t kUpdates = 100000;
    constexpr std::int64_t kChats = 1000;
    sluice::dispatch::DispatcherOptions options;
    options.max_concurrent_updates = 256;
    options.max_pending_updates = 1024;

    std::size_t running = 0;
    std::size_t max_running = 0;
    std::vector<std::int64_t> last_handled(kChats, 0);
    int out_of_order = 0;
    auto handler = [&](const sluice::telegram::Update& update) -> asio::awaitable<void> {
      ++running;
      max_running = std::max(max_running, running);
      auto executor = co_await asio::this_coro::executor;
      co_await asio::post(executor, asio::use_awaitable);
      std::int64_t& last = last_handled[static_cast<std::size_t>(update.update_id % kChats)];
      if (update.update_id <= last) {
        ++out_of_order;
      }
      last = update.update_id;
      --running;
    };
    sluice::dispatch::Dispatcher dispatcher(io.get_executor(), options, handler);

    std::vector<sluice::telegram::Update> templates;
    for (std::int64_t chat = 0; chat < kChats; ++chat) {
      templates.push_back(text_message(0, kFirstUserId + chat, "private", kFirstUserId + chat, "x"));
    }
    std::size_t max_pending = 0;
    std::int64_t confirmed = 0;
    for (std::int64_t id = 1; id <= kUpdates; ++id) {
      sluice::telegram::Update update = templates[static_cast<std::size_t>(id % kChats)];
      update.update_id = id;
      sluice::updates::HandledCallback on_handled = [&confirmed](std::int64_t) { ++confirmed; };
      co_await dispatcher.submit(std::move(update), std::move(on_handled));
      max_pending = std::max(max_pending, dispatcher.stats().pending);
    }
    co_await dispatcher.close(std::chrono::seconds(60));

    EXPECT_EQ(confirmed, kUpdates);
    EXPECT_EQ(dispatcher.stats().handled_total, static_cast<std::uint64_t>(kUpdates));
    EXPECT_EQ(out_of_order, 0);
    EXPECT_LE(max_running, options.max_concurrent_updates);
    EXPECT_GT(max_running, 1u);
    EXPECT_LE(max_pending, options.max_pending_updates);
    EXPECT_LE(dispatcher.stats().max_running, options.max_concurrent_updates);
    EXPECT_EQ(dispatcher.stats().active_keys, 0u) << "per-chat queues are removed once empty";
  });
}

TEST(Bot, PendingBacklogRespectsConcurrencyLimit) {
  // 100,000 updates waiting when the bot starts, as after a long outage.
  run_test(kMaxBacklogTestTime, [](asio::io_context& io) -> asio::awaitable<void> {
    constexpr int kUpdates = 100'000;
    constexpr int kChats = 1000;
    constexpr std::size_t kLimit = 32;
    constexpr std::size_t kPendingLimit = 64;
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(kChats));
    co_await sandbox.start();
    for (int i = 0; i < kUpdates; ++i) {
      sandbox.push_message(kFirstUserId + i % kChats, 0, "x");
    }

    std::size_t running = 0;
    std::size_t max_running = 0;
    std::size_t max_pending = 0;
    int handled = 0;
    Bot* bot_pointer = nullptr;
    Router router;
    router.on_message([&](Context&) -> asio::awaitable<void> {
      ++running;
      max_running = std::max(max_running, running);
      max_pending = std::max(max_pending, bot_pointer->dispatcher().stats().pending);
      auto executor = co_await asio::this_coro::executor;
      co_await asio::post(executor, asio::use_awaitable);
      --running;
      ++handled;
    });
    BotOptions options = bot_options(sandbox);
    options.max_concurrent_updates = kLimit;
    options.max_pending_updates = kPendingLimit;
    Bot bot(io.get_executor(), std::move(options), router);
    bot_pointer = &bot;
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    const bool confirmed = co_await sandbox.wait_for("all_confirmed", kMaxBacklogTestTime - 10s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(confirmed);
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_EQ(handled, kUpdates);
    EXPECT_LE(max_running, kLimit);
    EXPECT_GT(max_running, 1u);
    EXPECT_LE(bot.dispatcher().stats().max_running, kLimit);
    EXPECT_LE(max_pending, kPendingLimit);
    EXPECT_GT(max_pending, kLimit);
    co_await sandbox.stop();
  });
}

TEST(Bot, RestartSkipsConfirmedUpdates) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("sluice_dispatch_test_" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(path);
  run_test([&path](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    sluice::runtime::BlockingPool blocking(2);
    sluice::db::DatabaseOptions database_options;
    database_options.sqlite.blocking_pool = &blocking;
    sluice::db::Database database(io.get_executor(), "sqlite:///" + path.string(), database_options);
    sluice::updates::SqlOffsetStore store(database, "bot");
    co_await store.create_tables();

    std::vector<std::string> handled;
    std::int64_t last_update_id = 0;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      handled.emplace_back(ctx.text());
      last_update_id = ctx.update_id();
      co_return;
    });
    auto run_until_confirmed = [&](const char* name) -> asio::awaitable<void> {
      BotOptions options = bot_options(sandbox);
      options.offset_store = &store;
      Bot bot(io.get_executor(), std::move(options), router);
      sluice::runtime::TaskSet runner(io.get_executor(), name);
      auto error = std::make_shared<std::exception_ptr>();
      runner.spawn("bot", run_bot(bot, error));
      const bool confirmed = co_await sandbox.wait_for("all_confirmed", 10s);
      EXPECT_TRUE(confirmed) << name;
      bot.stop();
      co_await runner.join();
      EXPECT_EQ(rethrow_text(*error), "") << name;
    };

    // The first bot handles "a" and saves the offset past it.
    sandbox.push_message(kFirstUserId, 0, "a");
    co_await run_until_confirmed("first");
    EXPECT_EQ(co_await store.load(), last_update_id + 1);

    // A process that handled "b" and "c" and saved the offset, then crashed
    // before its next getUpdates, leaves both unconfirmed at Telegram.
    const std::int64_t id_of_a = last_update_id;
    sandbox.push_message(kFirstUserId, 0, "b");
    sandbox.push_message(kFirstUserId, 0, "c");
    co_await store.save(id_of_a + 3);
    sandbox.push_message(kFirstUserId, 0, "d");
    co_await run_until_confirmed("second");

    const std::vector<std::string> expected = {"a", "d"};
    EXPECT_EQ(handled, expected);
    EXPECT_EQ(last_update_id, id_of_a + 3);
    EXPECT_EQ(co_await store.load(), id_of_a + 4);
    co_await database.close();
    co_await sandbox.stop();
    blocking.join();
  });
  std::filesystem::remove(path);
}

// The next long poll starts while a handler still runs. The offset past the
// handled update must be stored at once, not when that poll returns, or a
// process killed during the poll handles the update again after a restart.
TEST(Bot, OffsetIsStoredDuringLongPoll) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    std::int64_t handled_id = 0;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      co_await sleep_for(50ms);
      handled_id = ctx.update_id();
    });
    sluice::updates::MemoryOffsetStore store;
    BotOptions options = bot_options(sandbox);
    options.offset_store = &store;
    options.shutdown_grace = 1s;
    Bot bot(io.get_executor(), std::move(options), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    // Every getUpdates takes 3 s, so the one that starts while the handler
    // runs is still in flight when the offset is checked.
    sluice::sandbox::FaultRule slow_polls;
    slow_polls.method = "getUpdates";
    slow_polls.latency_min = slow_polls.latency_max = 3s;
    std::vector<sluice::sandbox::FaultRule> rules = {slow_polls};
    sandbox.engine().faults().set_rules(std::move(rules));
    sandbox.push_message(kFirstUserId, 0, "a");
    const auto handled = [&] { return handled_id != 0; };
    EXPECT_TRUE(co_await wait_until(handled, 10s));
    const auto stored = [&] { return store.offset() == handled_id + 1; };
    const bool stored_during_poll = co_await wait_until(stored, 1s);

    bot.stop();
    co_await runner.join();
    EXPECT_TRUE(stored_during_poll) << "stored offset: " << store.offset().value_or(-1);
    EXPECT_EQ(rethrow_text(*error), "");
    co_await sandbox.stop();
  });
}

// With the journal, Telegram gets updates confirmed once they are stored,
// while their handlers still run.
TEST(Bot, JournalConfirmsStoredUpdatesBeforeHandling) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    sluice::updates::MemoryOffsetStore store;

    // The first handler waits until released; the other two queue behind
    // it in the same chat.
    asio::steady_timer release(io.get_executor(), std::chrono::steady_clock::time_point::max());
    std::vector<std::string> handled;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      if (handled.empty()) {
        co_await release.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      handled.emplace_back(ctx.text());
    });
    BotOptions options = bot_options(sandbox);
    options.offset_store = &store;
    options.polling.journal = true;
    Bot bot(io.get_executor(), std::move(options), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    sandbox.push_message(kFirstUserId, 0, "a");
    sandbox.push_message(kFirstUserId, 0, "b");
    sandbox.push_message(kFirstUserId, 0, "c");
    const bool confirmed = co_await sandbox.wait_for("all_confirmed", 10s);
    const std::size_t journaled = store.journal().size();
    const std::size_t handled_when_confirmed = handled.size();
    release.cancel();
    const std::function<bool()> three_handled = [&] { return handled.size() == 3; };
    const bool all_handled = co_await wait_until(three_handled, 10s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(confirmed);
    EXPECT_EQ(journaled, 3u);
    EXPECT_EQ(handled_when_confirmed, 0u);
    EXPECT_TRUE(all_handled);
    const std::vector<std::string> expected = {"a", "b", "c"};
    EXPECT_EQ(handled, expected);
    EXPECT_TRUE(store.journal().empty());
    EXPECT_EQ(rethrow_text(*error), "");
    co_await sandbox.stop();
  });
}

// A run stopped while a handler still ran leaves that update in the
// journal, and the next run handles it before anything newer.
TEST(Bot, JournalRestartHandlesUnfinishedUpdates) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(2));
    co_await sandbox.start();
    sluice::updates::MemoryOffsetStore store;

    std::vector<std::string> first_handled;
    Router stuck_router;
    stuck_router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      if (ctx.text() == "stuck") {
        co_await sleep_for(std::chrono::hours(1));
      }
      first_handled.emplace_back(ctx.text());
    });
    {
      BotOptions options = bot_options(sandbox);
      options.offset_store = &store;
      options.polling.journal = true;
      options.shutdown_grace = 100ms;
      Bot bot(io.get_executor(), std::move(options), stuck_router);
      sluice::runtime::TaskSet runner(io.get_executor(), "first");
      auto error = std::make_shared<std::exception_ptr>();
      runner.spawn("bot", run_bot(bot, error));
      sandbox.push_message(kFirstUserId, 0, "stuck");
      sandbox.push_message(kFirstUserId + 1, 0, "done");
      const bool confirmed = co_await sandbox.wait_for("all_confirmed", 10s);
      const std::function<bool()> one_handled = [&] { return first_handled.size() == 1; };
      const bool done = co_await wait_until(one_handled, 10s);
      bot.stop();
      co_await runner.join();
      EXPECT_TRUE(confirmed);
      EXPECT_TRUE(done);
      EXPECT_EQ(rethrow_text(*error), "");
    }
    EXPECT_EQ(store.journal().size(), 1u);

    std::vector<std::string> second_handled;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      second_handled.emplace_back(ctx.text());
      co_return;
    });
    {
      BotOptions options = bot_options(sandbox);
      options.offset_store = &store;
      options.polling.journal = true;
      Bot bot(io.get_executor(), std::move(options), router);
      sluice::runtime::TaskSet runner(io.get_executor(), "second");
      auto error = std::make_shared<std::exception_ptr>();
      runner.spawn("bot", run_bot(bot, error));
      sandbox.push_message(kFirstUserId, 0, "after");
      const std::function<bool()> two_handled = [&] { return second_handled.size() == 2; };
      const bool both = co_await wait_until(two_handled, 10s);
      bot.stop();
      co_await runner.join();
      EXPECT_TRUE(both);
      EXPECT_EQ(rethrow_text(*error), "");
    }
    const std::vector<std::string> first_expected = {"done"};
    const std::vector<std::string> second_expected = {"stuck", "after"};
    EXPECT_EQ(first_handled, first_expected);
    EXPECT_EQ(second_handled, second_expected);
    EXPECT_TRUE(store.journal().empty());
    co_await sandbox.stop();
  });
}

TEST(Bot, JournalNeedsOffsetStoreInADatabase) {
  asio::io_context io;
  Router router;
  BotOptions options;
  options.api.token = "123456789:AAHsandboxTokenForLocalTests000000";
  options.polling.journal = true;
  options.offset_database.clear();
  try {
    Bot bot(io.get_executor(), std::move(options), router);
    ADD_FAILURE() << "the Bot accepted a journal in memory";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("polling.journal"), std::string::npos) << error.what();
  }
}

TEST(Bot, BadOffsetDatabaseIsRejected) {
  asio::io_context io;
  Router router;
  auto message_for = [&](BotOptions options) -> std::string {
    try {
      Bot bot(io.get_executor(), std::move(options), router);
    } catch (const std::invalid_argument& error) {
      return error.what();
    }
    return "";
  };

  BotOptions bad_url;
  bad_url.api.token = "123456789:AAHsandboxTokenForLocalTests000000";
  bad_url.offset_database = "mysql://localhost/bot";
  const std::string bad_url_message = message_for(std::move(bad_url));
  EXPECT_NE(bad_url_message.find("BotOptions::offset_database"), std::string::npos) << bad_url_message;

  BotOptions no_bot_id;
  no_bot_id.api.token = "AAHsandboxTokenWithoutTheBotIdInFront";
  const std::string no_bot_id_message = message_for(std::move(no_bot_id));
  EXPECT_NE(no_bot_id_message.find("bot id"), std::string::npos) << no_bot_id_message;
}

// By default a bot keeps its offset in an SQLite file in the working
// directory, so a restarted process skips what it handled.
TEST(Bot, DefaultOffsetStoreIsAnSqliteFile) {
  const auto directory = std::filesystem::temp_directory_path() /
                         ("sluice_default_offsets_" + std::to_string(::getpid()));
  std::filesystem::remove_all(directory);
  std::filesystem::create_directories(directory);
  const auto previous_directory = std::filesystem::current_path();
  std::filesystem::current_path(directory);
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    std::int64_t last_update_id = 0;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      last_update_id = ctx.update_id();
      co_return;
    });
    BotOptions options = bot_options(sandbox);
    options.offset_database = BotOptions{}.offset_database;
    const std::string token = options.api.token;
    {
      Bot bot(io.get_executor(), std::move(options), router);
      sluice::runtime::TaskSet runner(io.get_executor(), "test");
      auto error = std::make_shared<std::exception_ptr>();
      runner.spawn("bot", run_bot(bot, error));
      sandbox.push_message(kFirstUserId, 0, "a");
      EXPECT_TRUE(co_await sandbox.wait_for("all_confirmed", 10s));
      bot.stop();
      co_await runner.join();
      EXPECT_EQ(rethrow_text(*error), "");
    }
    co_await sandbox.stop();

    std::filesystem::current_path(previous_directory);
    EXPECT_TRUE(std::filesystem::exists(directory / "sluice-updates.db"));
    sluice::runtime::BlockingPool blocking(1);
    sluice::db::DatabaseOptions database_options;
    database_options.sqlite.blocking_pool = &blocking;
    sluice::db::Database database(io.get_executor(), "sqlite:///" + (directory / "sluice-updates.db").string(),
                                  database_options);
    sluice::updates::SqlOffsetStore store(database, token.substr(0, token.find(':')));
    EXPECT_EQ(co_await store.load(), last_update_id + 1);
    co_await database.close();
    blocking.join();
  });
  std::filesystem::current_path(previous_directory);
  std::filesystem::remove_all(directory);
}

TEST(Bot, RecordedUpdatesReachTheirKindHandler) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();

    std::map<std::string, int> handled_by_kind;
    Router router;
    for (std::size_t i = 0; i + 1 < sluice::updates::kUpdateKindCount; ++i) {
      const auto kind = static_cast<sluice::updates::UpdateKind>(i);
      router.on(kind, filters::any(), [&handled_by_kind](Context& ctx) -> asio::awaitable<void> {
        ++handled_by_kind[std::string(sluice::updates::to_string(ctx.kind()))];
        co_return;
      });
    }
    sluice::updates::MemoryOffsetStore store;
    BotOptions options = bot_options(sandbox);
    options.offset_store = &store;
    Bot bot(io.get_executor(), std::move(options), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));
    // Let the first getUpdates set allowed_updates before queuing, because
    // the sandbox filters updates when they are queued.
    co_await sandbox.wait_for("calls.getUpdates>=1", 5s);

    const std::filesystem::path folder = std::filesystem::path(SLUICE_TEST_DATA_DIR) / "updates";
    std::map<std::string, int> expected_by_kind;
    int pushed = 0;
    std::size_t expected_dead_letters = 0;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      if (entry.path().extension() != ".json") {
        continue;
      }
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      auto json = boost::json::parse(text.str()).as_object();
      sluice::telegram::Update update;
      const bool parses = !sluice::telegram::try_from_json(json, update).has_value();
      const auto kind = sluice::updates::kind_of(update);
      if (sandbox.push_update(json)) {
        ++pushed;
        if (!parses) {
          ++expected_dead_letters;
        } else if (kind != sluice::updates::UpdateKind::unknown) {
          ++expected_by_kind[std::string(sluice::updates::to_string(kind))];
        }
      }
    }
    const bool confirmed = co_await sandbox.wait_for("all_confirmed", 20s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(confirmed);
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_GT(pushed, 50);
    EXPECT_EQ(handled_by_kind, expected_by_kind);
    EXPECT_EQ(store.dead_letters().size(), expected_dead_letters);
    EXPECT_EQ(bot.dispatcher().stats().failed_total, 0u);
    co_await sandbox.stop();
  });
}

TEST(Bot, WrongTokenStopsPolling) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    Router router;
    router.on_message(no_op);
    BotOptions options = bot_options(sandbox);
    options.api.token = "987654321:AAHwrongTokenForLocalTests0000000";
    options.username = "my_bot";
    Bot bot(io.get_executor(), std::move(options), router);

    int error_code = 0;
    std::string message;
    try {
      co_await bot.run_polling();
    } catch (const sluice::updates::PollingStopped& stopped) {
      error_code = stopped.error_code();
      message = stopped.what();
    }
    EXPECT_EQ(error_code, 401);
    EXPECT_NE(message.find("token"), std::string::npos) << message;
    EXPECT_EQ(message.find("AAHwrongToken"), std::string::npos) << message;
    co_await sandbox.stop();
  });
}

TEST(Bot, DeletesWebhookBeforePollingWhenAsked) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    Router router;
    int handled = 0;
    router.on_message([&handled](Context&) -> asio::awaitable<void> {
      ++handled;
      co_return;
    });
    BotOptions options = bot_options(sandbox);
    options.polling.delete_webhook = true;
    Bot bot(io.get_executor(), std::move(options), router);
    // The bot's own API client sets a webhook, as an earlier run would leave it.
    std::vector<std::string> every_kind;
    co_await sluice::updates::set_webhook(bot.api(), "http://127.0.0.1:9/webhook", "left-over",
                                          std::move(every_kind));
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    sandbox.push_message(kFirstUserId, 0, "after the webhook");
    const bool confirmed = co_await sandbox.wait_for("all_confirmed", 10s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(confirmed);
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_EQ(handled, 1);
    EXPECT_FALSE(sandbox.engine().webhook_active());
    co_await sandbox.stop();
  });
}

TEST(Bot, BadWebhookSecretFailsBeforeAnyCall) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    Router router;
    router.on_message(no_op);
    Bot bot(io.get_executor(), bot_options(sandbox), router);
    sluice::dispatch::WebhookServerOptions options;
    options.webhook.secret_token = "has spaces";
    std::string message;
    try {
      co_await bot.run_webhook(std::move(options));
    } catch (const std::invalid_argument& error) {
      message = error.what();
    }
    EXPECT_NE(message.find("secret_token"), std::string::npos) << message;
    EXPECT_EQ(sandbox.engine().stats().calls, 0u) << "no getMe before the options are checked";
    co_await sandbox.stop();
  });
}

// -- webhook ----------------------------------------------------------------

constexpr std::string_view kSecret = "s3cret-token_1";

asio::awaitable<sluice::http::Response> post_update(sluice::http::Client& client, std::uint16_t port,
                                                    std::string body, std::string secret) {
  sluice::http::ClientRequest request{
      .method = sluice::http::Verb::post,
      .url = "http://127.0.0.1:" + std::to_string(port) + "/webhook",
      .body = std::move(body),
      .content_type = "application/json",
  };
  if (!secret.empty()) {
    request.headers.emplace_back("X-Telegram-Bot-Api-Secret-Token", std::move(secret));
  }
  sluice::http::Response response = co_await client.request(std::move(request));
  co_return response;
}

std::string update_json(std::int64_t update_id, const std::string& text) {
  return sluice::telegram::serialize_json(text_message(update_id, 42, "private", 42, text));
}

asio::awaitable<void> run_webhook_bot(Bot& bot, std::shared_ptr<std::exception_ptr> error,
                                      std::size_t max_in_flight = 1) {
  try {
    sluice::dispatch::WebhookServerOptions options;
    options.webhook.secret_token = std::string(kSecret);
    options.webhook.max_in_flight = max_in_flight;
    options.webhook.body_limit = 4096;
    co_await bot.run_webhook(std::move(options));
  } catch (...) {
    *error = std::current_exception();
  }
}

// Starts `bot` on a webhook in `runner`, waits for its port and points the
// sandbox's webhook at it.
asio::awaitable<void> start_webhook_bot(Bot& bot, sluice::runtime::TaskSet& runner,
                                        std::shared_ptr<std::exception_ptr> error) {
  auto executor = co_await asio::this_coro::executor;
  runner.spawn("bot", run_webhook_bot(bot, error, 16));
  while (bot.webhook_port() == 0 && !*error) {
    co_await asio::post(executor, asio::use_awaitable);
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(bot.webhook_port()) + "/webhook";
  std::vector<std::string> every_kind;
  co_await sluice::updates::set_webhook(bot.api(), url, std::string(kSecret), std::move(every_kind));
}

TEST(Webhook, ChecksSecretSizeAndLoad) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    // The first update's handler waits for `release`, so the webhook has
    // one update in flight while the other requests arrive.
    asio::steady_timer release(io.get_executor(), std::chrono::steady_clock::time_point::max());
    std::vector<std::string> handled;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      if (ctx.text() == "slow") {
        co_await release.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      handled.emplace_back(ctx.text());
    });
    BotOptions options;
    options.api.token = "123456789:AAHsandboxTokenForLocalTests000000";
    options.api.base_url = "http://127.0.0.1:9";  // never called: the username is given
    options.username = "my_bot";
    options.shutdown_grace = 2s;
    options.offset_database.clear();
    Bot bot(io.get_executor(), std::move(options), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_webhook_bot(bot, error));
    while (bot.webhook_port() == 0 && !*error) {
      co_await asio::post(io.get_executor(), asio::use_awaitable);
    }
    const std::uint16_t port = bot.webhook_port();
    sluice::http::Client client(io.get_executor());

    auto wrong = co_await post_update(client, port, update_json(1, "a"), "wrong");
    auto missing = co_await post_update(client, port, update_json(2, "b"), "");
    auto oversized = co_await post_update(client, port, std::string(5000, ' '), std::string(kSecret));

    // One slow update fills the single in-flight slot; the next gets 429.
    auto slow_status = std::make_shared<int>(0);
    auto send_slow = [](sluice::http::Client& http, std::uint16_t to, std::shared_ptr<int> status)
        -> asio::awaitable<void> {
      auto response = co_await post_update(http, to, update_json(3, "slow"), std::string(kSecret));
      *status = static_cast<int>(response.result_int());
    };
    runner.spawn("slow request", send_slow(client, port, slow_status));
    while (bot.webhook()->stats().in_flight == 0) {
      co_await asio::post(io.get_executor(), asio::use_awaitable);
    }
    auto overloaded = co_await post_update(client, port, update_json(4, "c"), std::string(kSecret));
    EXPECT_EQ(*slow_status, 0);  // no reply before the update is handled
    release.cancel();
    while (*slow_status == 0) {
      co_await asio::post(io.get_executor(), asio::use_awaitable);
    }
    auto accepted = co_await post_update(client, port, update_json(5, "d"), std::string(kSecret));
    auto invalid = co_await post_update(client, port, R"({"update_id":6,"message":{"chat":1}})",
                                        std::string(kSecret));

    bot.stop();
    co_await runner.join();

    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_EQ(wrong.result_int(), 401u);
    EXPECT_EQ(missing.result_int(), 401u);
    EXPECT_EQ(oversized.result_int(), 413u);
    EXPECT_EQ(overloaded.result_int(), 429u);
    EXPECT_EQ(overloaded[sluice::http::Field::retry_after], "1");
    EXPECT_EQ(*slow_status, 200);
    EXPECT_EQ(accepted.result_int(), 200u);
    EXPECT_EQ(invalid.result_int(), 200u);
    const std::vector<std::string> expected = {"slow", "d"};
    EXPECT_EQ(handled, expected);
  });
}

// The sandbox gives up on a delivery after 300 ms and delivers the update
// again while the first handling still runs: the handler runs once.
TEST(Webhook, SlowHandlerRunsOncePerUpdate) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    auto options = sandbox_options(1);
    options.engine.webhook.request_timeout = 300ms;
    options.engine.webhook.retry_initial = 100ms;
    options.engine.webhook.retry_max = 200ms;
    sluice::sandbox::Sandbox sandbox(io.get_executor(), options);
    co_await sandbox.start();
    std::map<std::string, int> runs;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      ++runs[std::string(ctx.text())];
      if (ctx.text() == "slow") {
        asio::steady_timer pause(io.get_executor(), 1200ms);
        co_await pause.async_wait(asio::use_awaitable);
      }
      co_await ctx.reply(std::string(ctx.text()));
    });
    Bot bot(io.get_executor(), bot_options(sandbox), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    co_await start_webhook_bot(bot, runner, error);
    sandbox.push_message(kFirstUserId, kFirstUserId, "slow");
    sandbox.push_message(kFirstUserId, kFirstUserId, "fast");
    // The sandbox delivers one update per chat at a time, so the second
    // reply means the first update was confirmed.
    const bool replied = co_await sandbox.wait_for("calls.sendMessage>=2", 20s);
    const auto duplicates = bot.webhook()->stats().duplicates;
    const auto failures = sandbox.engine().evaluate_condition("webhook_failures>=1");

    bot.stop();
    co_await runner.join();
    co_await sandbox.stop();
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_TRUE(replied);
    EXPECT_TRUE(failures) << "the sandbox timed out on the slow update";
    EXPECT_GE(duplicates, 1u);
    EXPECT_EQ(runs["slow"], 1);
    EXPECT_EQ(runs["fast"], 1);
  });
}

// A delivery of an update handled before gets 200 and runs no handler.
TEST(Webhook, RepeatedDeliveryAnsweredWithoutHandling) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    int runs = 0;
    Router router;
    router.on_message([&](Context&) -> asio::awaitable<void> {
      ++runs;
      co_return;
    });
    BotOptions options;
    options.api.token = "123456789:AAHsandboxTokenForLocalTests000000";
    options.api.base_url = "http://127.0.0.1:9";  // never called: the username is given
    options.username = "my_bot";
    options.shutdown_grace = 2s;
    options.offset_database.clear();
    Bot bot(io.get_executor(), std::move(options), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_webhook_bot(bot, error));
    while (bot.webhook_port() == 0 && !*error) {
      co_await asio::post(io.get_executor(), asio::use_awaitable);
    }
    const std::uint16_t port = bot.webhook_port();
    sluice::http::Client client(io.get_executor());
    auto first = co_await post_update(client, port, update_json(7, "a"), std::string(kSecret));
    auto again = co_await post_update(client, port, update_json(7, "a"), std::string(kSecret));
    auto next = co_await post_update(client, port, update_json(8, "b"), std::string(kSecret));

    bot.stop();
    co_await runner.join();
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_EQ(first.result_int(), 200u);
    EXPECT_EQ(again.result_int(), 200u);
    EXPECT_EQ(next.result_int(), 200u);
    EXPECT_EQ(runs, 2);
  });
}

// The first call of a handler travels in the webhook reply and Telegram
// makes it; a second one goes through the BotApi.
TEST(Webhook, FirstCallTravelsInReply) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    Router router;
    router.on_message([](Context& ctx) -> asio::awaitable<void> {
      sluice::telegram::SendMessage first{.chat_id = *ctx.chat_id(), .text = "first"};
      co_await sluice::dispatch::call_in_webhook_reply(ctx, std::move(first));
      sluice::telegram::SendMessage second{.chat_id = *ctx.chat_id(), .text = "second"};
      co_await sluice::dispatch::call_in_webhook_reply(ctx, std::move(second));
    });
    Bot bot(io.get_executor(), bot_options(sandbox), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    co_await start_webhook_bot(bot, runner, error);
    sandbox.push_message(kFirstUserId, kFirstUserId, "hello");
    const bool both_sent = co_await sandbox.wait_for("calls.sendMessage>=2", 10s);
    const auto client_calls = bot.api().metrics().calls;
    const auto in_replies = bot.webhook()->stats().calls_in_replies;

    bot.stop();
    co_await runner.join();
    std::vector<std::string> texts;
    for (const auto& call : sandbox.engine().calls_json("sendMessage", kFirstUserId)) {
      texts.emplace_back(call.at("params").at("text").as_string());
    }
    co_await sandbox.stop();
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_TRUE(both_sent);
    const std::vector<std::string> expected = {"second", "first"};
    EXPECT_EQ(texts, expected) << "the reply's call runs after the handler returned";
    EXPECT_EQ(in_replies, 1u);
    const auto send_calls = client_calls.find("sendMessage");
    EXPECT_NE(send_calls, client_calls.end());
    if (send_calls != client_calls.end()) {
      EXPECT_EQ(send_calls->second, 1u);
    }
  });
}

// With long polling there is no webhook reply: the call goes through the
// BotApi.
TEST(Bot, WebhookReplyCallWorksWhenPolling) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options(1));
    co_await sandbox.start();
    Router router;
    router.on_message([](Context& ctx) -> asio::awaitable<void> {
      sluice::telegram::SendMessage request{.chat_id = *ctx.chat_id(), .text = "polled"};
      co_await sluice::dispatch::call_in_webhook_reply(ctx, std::move(request));
    });
    Bot bot(io.get_executor(), bot_options(sandbox), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));
    sandbox.push_message(kFirstUserId, 0, "hello");
    const bool sent = co_await sandbox.wait_for("calls.sendMessage>=1", 10s);
    bot.stop();
    co_await runner.join();
    co_await sandbox.stop();
    EXPECT_EQ(rethrow_text(*error), "");
    EXPECT_TRUE(sent);
  });
}

TEST(Webhook, ConstantTimeCompare) {
  EXPECT_TRUE(sluice::updates::equal_in_constant_time("abc", "abc"));
  EXPECT_FALSE(sluice::updates::equal_in_constant_time("abc", "abd"));
  EXPECT_FALSE(sluice::updates::equal_in_constant_time("abc", "abcd"));
  EXPECT_FALSE(sluice::updates::equal_in_constant_time("", "a"));
  EXPECT_TRUE(sluice::updates::equal_in_constant_time("", ""));
}

}  // namespace
