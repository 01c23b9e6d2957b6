// Conversations through dispatch::Bot: Context::state, the in_state filters,
// the per-conversation lock and group-to-supergroup migration, against the
// in-process sandbox on 127.0.0.1 or through Bot::handle_update.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <gtest/gtest.h>

#include <sluice/dispatch/bot.hpp>
#include <sluice/fsm/conversation.hpp>
#include <sluice/fsm/storage.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/sandbox/sandbox.hpp>

#include "unit/fsm/storage_checks.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::dispatch::Bot;
using sluice::dispatch::BotOptions;
using sluice::dispatch::Context;
using sluice::dispatch::Router;
using sluice::fsm::MemoryStorage;
using sluice::fsm::StateRecord;
using sluice::fsm::StorageKey;
using sluice::fsm::testing::record;
using sluice::fsm::testing::run_test;
namespace filters = sluice::dispatch::filters;

constexpr std::int64_t kUserId = 100000001;
constexpr std::int64_t kOtherUserId = 100000002;
constexpr std::int64_t kGroupId = -300;
constexpr std::int64_t kSupergroupId = -1000000000300;

asio::awaitable<void> yield() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

sluice::sandbox::SandboxOptions sandbox_options() {
  sluice::sandbox::SandboxOptions options;
  options.engine.flood.enabled = false;
  sluice::sandbox::Scenario scenario;
  for (const std::int64_t id : {kUserId, kOtherUserId}) {
    sluice::sandbox::User user;
    user.id = id;
    user.first_name = "User" + std::to_string(id);
    scenario.users.push_back(user);
  }
  sluice::sandbox::Chat group;
  group.id = kGroupId;
  group.type = sluice::sandbox::ChatType::group;
  group.title = "Old group";
  group.migrated_to_chat_id = kSupergroupId;
  scenario.chats.push_back(group);
  sluice::sandbox::Chat supergroup;
  supergroup.id = kSupergroupId;
  supergroup.type = sluice::sandbox::ChatType::supergroup;
  supergroup.title = "New supergroup";
  scenario.chats.push_back(supergroup);
  sluice::sandbox::FloodOptions flood;
  flood.enabled = false;
  scenario.flood = flood;
  options.scenario = scenario;
  return options;
}

BotOptions bot_options(sluice::sandbox::Sandbox& sandbox, sluice::fsm::Storage& storage) {
  BotOptions options;
  options.api.token = sandbox.engine().bot().token;
  options.api.base_url = sandbox.base_url();
  options.api.flood.enabled = false;
  options.api.jitter_seed = 1;
  options.polling.timeout = 1s;
  options.polling.jitter_seed = 1;
  options.shutdown_grace = 5s;
  options.fsm_storage = &storage;
  // Each test starts a new sandbox, which numbers updates from the start.
  options.offset_database.clear();
  return options;
}

// Options of a bot that is only driven through handle_update and never
// calls the Bot API.
BotOptions offline_options(sluice::fsm::Storage& storage) {
  BotOptions options;
  options.api.token = "123456:offline-token";
  options.api.base_url = "http://127.0.0.1:9";
  options.username = "offline_bot";
  options.fsm_storage = &storage;
  options.offset_database.clear();
  return options;
}

asio::awaitable<void> run_bot(Bot& bot, std::shared_ptr<std::exception_ptr> error) {
  try {
    co_await bot.run_polling();
  } catch (...) {
    *error = std::current_exception();
  }
}

std::vector<std::string> sent_texts(sluice::sandbox::Sandbox& sandbox, std::int64_t chat_id) {
  std::vector<std::string> texts;
  for (const auto& call : sandbox.engine().calls_json("sendMessage", chat_id)) {
    texts.emplace_back(call.at("params").at("text").as_string());
  }
  return texts;
}

sluice::telegram::Update group_message(std::int64_t update_id, std::int64_t chat_id, std::int64_t user_id,
                                       const std::string& text) {
  boost::json::object update{
      {"update_id", update_id},
      {"message",
       {{"message_id", update_id},
        {"date", 0},
        {"chat", {{"id", chat_id}, {"type", "group"}, {"title", "G"}}},
        {"from", {{"id", user_id}, {"is_bot", false}, {"first_name", "U"}}},
        {"text", text}}}};
  return sluice::telegram::from_json<sluice::telegram::Update>(update);
}

TEST(FsmBot, TwoStepSignupConversation) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options());
    co_await sandbox.start();
    MemoryStorage storage;

    Router router;
    router.on_command("signup", [](Context& ctx) -> asio::awaitable<void> {
      co_await ctx.state().set_state("signup:email");
      co_await ctx.reply("email?");
    });
    router.on_message(filters::in_state("signup:email") && filters::has_text(),
                      [](Context& ctx) -> asio::awaitable<void> {
                        boost::json::object values{{"email", std::string(ctx.text())}};
                        co_await ctx.state().update_data(std::move(values));
                        std::string text = "thanks " + std::string(ctx.state().data().at("email").as_string());
                        co_await ctx.state().set_state("signup:done");
                        co_await ctx.reply(std::move(text));
                      });
    router.on_message(filters::any_state(), [](Context& ctx) -> asio::awaitable<void> {
      std::string text = "already in " + std::string(ctx.state().state());
      co_await ctx.state().clear();
      co_await ctx.reply(std::move(text));
    });
    router.on_message(filters::no_state(), [](Context& ctx) -> asio::awaitable<void> {
      co_await ctx.reply("say /signup");
    });

    Bot bot(io.get_executor(), bot_options(sandbox, storage), router);
    sluice::runtime::TaskSet runner(io.get_executor(), "test");
    auto error = std::make_shared<std::exception_ptr>();
    runner.spawn("bot", run_bot(bot, error));

    // Pushed at once: per-chat order and the conversation lock keep the
    // steps in sequence.
    for (const char* text : {"/signup", "ann@example.org", "hello", "hello again"}) {
      sandbox.push_message(kUserId, 0, text);
    }
    const bool replied = co_await sandbox.wait_for("calls.sendMessage>=4", 20s);
    bot.stop();
    co_await runner.join();

    EXPECT_TRUE(replied);
    EXPECT_FALSE(*error);
    const std::vector<std::string> expected = {"email?", "thanks ann@example.org", "already in signup:done",
                                               "say /signup"};
    EXPECT_EQ(sent_texts(sandbox, kUserId), expected);
    const StorageKey key{.bot_id = sandbox.engine().bot().id(), .chat_id = kUserId, .user_id = kUserId};
    std::optional<StateRecord> left = co_await storage.get(key);
    EXPECT_FALSE(left.has_value());
    EXPECT_EQ(storage.lock_entries(), 0u);
    co_await sandbox.stop();
  });
}

TEST(FsmBot, OneUserInGroupNeverInterleaves) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    MemoryStorage storage;
    // Per handler call: which conversation ran, and whether another call of
    // the same conversation was running at that moment.
    std::map<std::int64_t, int> running;
    std::vector<std::string> trace;
    int overlaps = 0;
    Router router;
    router.on_message([&](Context& ctx) -> asio::awaitable<void> {
      const std::int64_t user = ctx.from()->id;
      if (++running[user] > 1) {
        ++overlaps;
      }
      trace.push_back(std::to_string(user) + " start " + std::string(ctx.text()));
      const int count = ctx.state().data().contains("count") ? static_cast<int>(ctx.state().data().at("count").as_int64()) : 0;
      for (int i = 0; i < 3; ++i) {
        co_await yield();
      }
      boost::json::object values{{"count", count + 1}};
      co_await ctx.state().update_data(std::move(values));
      trace.push_back(std::to_string(user) + " end " + std::string(ctx.text()));
      --running[user];
    });
    Bot bot(io.get_executor(), offline_options(storage), router);

    // handle_update has no per-chat ordering, so only the conversation lock
    // keeps the first user's two updates apart.
    const auto first = group_message(1, kGroupId, kUserId, "a");
    const auto second = group_message(2, kGroupId, kUserId, "b");
    const auto other = group_message(3, kGroupId, kOtherUserId, "c");
    sluice::runtime::TaskSet updates(io.get_executor(), "updates");
    updates.spawn("first", bot.handle_update(first));
    updates.spawn("second", bot.handle_update(second));
    updates.spawn("other", bot.handle_update(other));
    co_await updates.join();

    EXPECT_EQ(overlaps, 0);
    const std::string user = std::to_string(kUserId);
    const std::string other_user = std::to_string(kOtherUserId);
    std::vector<std::string> first_user_trace;
    for (const std::string& line : trace) {
      if (line.starts_with(user + " ")) {
        first_user_trace.push_back(line);
      }
    }
    const std::vector<std::string> expected = {user + " start a", user + " end a", user + " start b",
                                               user + " end b"};
    EXPECT_EQ(first_user_trace, expected);
    // The other user's conversation did not wait for the first user's.
    const auto position = [&trace](const std::string& line) {
      return std::find(trace.begin(), trace.end(), line) - trace.begin();
    };
    EXPECT_LT(position(other_user + " start c"), position(user + " end a"));
    const StorageKey key{.bot_id = 123456, .chat_id = kGroupId, .user_id = kUserId};
    std::optional<StateRecord> counted = co_await storage.get(key);
    EXPECT_TRUE(counted.has_value());
    const StateRecord counted_record = counted.value_or(StateRecord{});
    EXPECT_TRUE(counted_record.data.contains("count"));
    if (counted_record.data.contains("count")) {
      EXPECT_EQ(counted_record.data.at("count").as_int64(), 2);
    }
    EXPECT_EQ(storage.lock_entries(), 0u);
    co_await bot.tasks().close(1s);
    co_await bot.dispatcher().close(1s);
  });
}

TEST(FsmBot, MigrateMessageMovesState) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    MemoryStorage storage;
    const StorageKey old_key{.bot_id = 123456, .chat_id = kGroupId, .user_id = kUserId};
    const StorageKey new_key{.bot_id = 123456, .chat_id = kSupergroupId, .user_id = kUserId};
    const StateRecord saved = record("quiz:question 3", {{"score", 2}});
    co_await storage.set(old_key, saved, std::nullopt);

    Router router;
    int handled = 0;
    router.on_message([&handled](Context&) -> asio::awaitable<void> {
      ++handled;
      co_return;
    });
    Bot bot(io.get_executor(), offline_options(storage), router);
    boost::json::object raw{
        {"update_id", 7},
        {"message",
         {{"message_id", 7},
          {"date", 0},
          {"chat", {{"id", kGroupId}, {"type", "group"}, {"title", "G"}}},
          {"from", {{"id", kUserId}, {"is_bot", false}, {"first_name", "U"}}},
          {"migrate_to_chat_id", kSupergroupId}}}};
    const auto update = sluice::telegram::from_json<sluice::telegram::Update>(raw);
    co_await bot.handle_update(update);

    EXPECT_EQ(handled, 1);
    std::optional<StateRecord> moved = co_await storage.get(new_key);
    EXPECT_EQ(moved, std::optional<StateRecord>(saved));
    std::optional<StateRecord> left = co_await storage.get(old_key);
    EXPECT_FALSE(left.has_value());
    co_await bot.tasks().close(1s);
    co_await bot.dispatcher().close(1s);
  });
}

TEST(FsmBot, ReplyToMigratedGroupMovesState) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    sluice::sandbox::Sandbox sandbox(io.get_executor(), sandbox_options());
    co_await sandbox.start();
    MemoryStorage storage;
    const std::int64_t bot_id = sandbox.engine().bot().id();
    const StorageKey old_key{.bot_id = bot_id, .chat_id = kGroupId, .user_id = kUserId};
    const StorageKey new_key{.bot_id = bot_id, .chat_id = kSupergroupId, .user_id = kUserId};
    const StateRecord saved = record("quiz:question 3");
    co_await storage.set(old_key, saved, std::nullopt);

    Router router;
    router.on_message([](Context& ctx) -> asio::awaitable<void> { co_await ctx.reply("noted"); });
    Bot bot(io.get_executor(), bot_options(sandbox, storage), router);
    sluice::telegram::Update update = group_message(1, kGroupId, kUserId, "answer");
    co_await bot.handle_update(update);

    const std::vector<std::string> expected = {"noted"};
    EXPECT_EQ(sent_texts(sandbox, kSupergroupId), expected);
    std::optional<StateRecord> moved = co_await storage.get(new_key);
    EXPECT_EQ(moved, std::optional<StateRecord>(saved));
    std::optional<StateRecord> left = co_await storage.get(old_key);
    EXPECT_FALSE(left.has_value());
    co_await bot.tasks().close(1s);
    co_await bot.dispatcher().close(1s);
    co_await sandbox.stop();
  });
}

TEST(FsmBot, StateWithoutStorageThrows) {
  sluice::dispatch::ServiceRegistry services;
  sluice::dispatch::BotEnvironment environment{.services = &services, .username = "my_bot"};
  const auto update = group_message(1, kGroupId, kUserId, "x");
  Context context(update, environment);
  EXPECT_THROW(context.state(), std::logic_error);
  EXPECT_FALSE(filters::in_state("a")(context));
  EXPECT_FALSE(filters::any_state()(context));
  EXPECT_TRUE(filters::no_state()(context));
}

TEST(FsmBot, TokenWithoutBotIdRejected) {
  asio::io_context io;
  MemoryStorage storage;
  Router router;
  BotOptions options = offline_options(storage);
  options.api.token = "not-a-telegram-token";
  EXPECT_THROW(Bot(io.get_executor(), options, router), std::invalid_argument);
}

}  // namespace
