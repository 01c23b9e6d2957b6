#pragma once

// Checks that every fsm::Storage must pass, shared by the memory and SQLite
// tests here and the PostgreSQL and Redis tests in tests/integration/fsm.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <gtest/gtest.h>

#include <sluice/fsm/storage.hpp>

#include "support/run_on_loop.hpp"

namespace sluice::fsm::testing {

namespace asio = boost::asio;

// Upper bound of one test body, so that a broken test fails instead of
// hanging; tests end far sooner.
inline constexpr std::chrono::seconds kMaxTestTime{60};

// Runs `body` on a fresh io_context; fails the test on an exception or
// after kMaxTestTime.
inline void run_test(std::function<asio::awaitable<void>(asio::io_context&)> body) {
  sluice_test::run_on_loop(kMaxTestTime, body);
}

inline StateRecord record(std::string state, boost::json::object data = {}) {
  return StateRecord{.state = std::move(state), .data = std::move(data)};
}

// A bot id per test program run, so that programs sharing one server do not
// see each other's records.
inline std::int64_t test_bot_id(std::int64_t base) {
  return base * 1000000 + static_cast<std::int64_t>(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

// set, get and clear of two keys that differ only in the thread.
inline asio::awaitable<void> check_set_get_clear(Storage& storage, std::int64_t bot_id) {
  const StorageKey key{.bot_id = bot_id, .chat_id = -100, .user_id = 7};
  StorageKey topic = key;
  topic.thread_id = 3;

  std::optional<StateRecord> missing = co_await storage.get(key);
  EXPECT_FALSE(missing.has_value());

  const StateRecord email = record("signup:email", {{"name", "Ann"}, {"age", 31}});
  co_await storage.set(key, email, std::nullopt);
  const StateRecord topic_record = record("topic");
  co_await storage.set(topic, topic_record, std::nullopt);

  std::optional<StateRecord> stored = co_await storage.get(key);
  EXPECT_TRUE(stored.has_value());
  if (stored) {
    EXPECT_EQ(stored->state, "signup:email");
    EXPECT_EQ(stored->data, email.data);
  }
  std::optional<StateRecord> stored_topic = co_await storage.get(topic);
  EXPECT_EQ(stored_topic, std::optional<StateRecord>(topic_record));

  const StateRecord replaced = record("signup:done");
  co_await storage.set(key, replaced, std::nullopt);
  std::optional<StateRecord> after_replace = co_await storage.get(key);
  EXPECT_EQ(after_replace, std::optional<StateRecord>(replaced));

  co_await storage.clear(key);
  std::optional<StateRecord> cleared = co_await storage.get(key);
  EXPECT_FALSE(cleared.has_value());
  std::optional<StateRecord> topic_after_clear = co_await storage.get(topic);
  EXPECT_TRUE(topic_after_clear.has_value());
  co_await storage.clear(topic);
}

// move_chat moves the records of one chat (per-user, per-topic and
// per-chat keys), keeps a record that already exists under the new key and
// leaves other chats and bots alone.
inline asio::awaitable<void> check_move_chat(Storage& storage, std::int64_t bot_id) {
  constexpr std::int64_t kOld = -4001;
  constexpr std::int64_t kNew = -1004001;
  const StorageKey ann{.bot_id = bot_id, .chat_id = kOld, .user_id = 1};
  const StorageKey bob{.bot_id = bot_id, .chat_id = kOld, .user_id = 2, .thread_id = 9};
  const StorageKey whole_chat{.bot_id = bot_id, .chat_id = kOld, .user_id = kOld};
  const StorageKey carl{.bot_id = bot_id, .chat_id = kOld, .user_id = 3};
  const StorageKey carl_new{.bot_id = bot_id, .chat_id = kNew, .user_id = 3};
  const StorageKey other_chat{.bot_id = bot_id, .chat_id = -4002, .user_id = 1};
  const StorageKey other_bot{.bot_id = bot_id + 1, .chat_id = kOld, .user_id = 1};

  // Records are built in named locals: g++ 12 may destroy temporaries of a
  // co_await expression twice (GCC PR 100611).
  const StateRecord ann_record = record("ann", {{"n", 1}});
  const StateRecord bob_record = record("bob");
  const StateRecord chat_record = record("chat");
  const StateRecord carl_old_record = record("carl old");
  const StateRecord carl_new_record = record("carl new");
  const StateRecord other_record = record("other");
  co_await storage.set(ann, ann_record, std::chrono::hours(1));
  co_await storage.set(bob, bob_record, std::nullopt);
  co_await storage.set(whole_chat, chat_record, std::nullopt);
  co_await storage.set(carl, carl_old_record, std::nullopt);
  co_await storage.set(carl_new, carl_new_record, std::nullopt);
  co_await storage.set(other_chat, other_record, std::nullopt);
  co_await storage.set(other_bot, other_record, std::nullopt);

  const std::size_t moved = co_await storage.move_chat(bot_id, kOld, kNew);
  EXPECT_EQ(moved, 3u);

  const StorageKey ann_new{.bot_id = bot_id, .chat_id = kNew, .user_id = 1};
  const StorageKey bob_new{.bot_id = bot_id, .chat_id = kNew, .user_id = 2, .thread_id = 9};
  const StorageKey whole_chat_new{.bot_id = bot_id, .chat_id = kNew, .user_id = kNew};
  std::optional<StateRecord> ann_moved = co_await storage.get(ann_new);
  EXPECT_EQ(ann_moved, std::optional<StateRecord>(ann_record));
  std::optional<StateRecord> bob_moved = co_await storage.get(bob_new);
  EXPECT_EQ(bob_moved, std::optional<StateRecord>(bob_record));
  std::optional<StateRecord> chat_moved = co_await storage.get(whole_chat_new);
  EXPECT_EQ(chat_moved, std::optional<StateRecord>(chat_record));
  std::optional<StateRecord> carl_kept = co_await storage.get(carl_new);
  EXPECT_EQ(carl_kept, std::optional<StateRecord>(carl_new_record));

  const std::vector<StorageKey> old_keys = {ann, bob, whole_chat, carl};
  for (const StorageKey& old_key : old_keys) {
    std::optional<StateRecord> left = co_await storage.get(old_key);
    EXPECT_FALSE(left.has_value()) << old_key.to_string();
  }
  std::optional<StateRecord> other_chat_left = co_await storage.get(other_chat);
  EXPECT_TRUE(other_chat_left.has_value());
  std::optional<StateRecord> other_bot_left = co_await storage.get(other_bot);
  EXPECT_TRUE(other_bot_left.has_value());

  const std::vector<StorageKey> all_keys = {ann_new, bob_new, whole_chat_new, carl_new, other_chat, other_bot};
  for (const StorageKey& key : all_keys) {
    co_await storage.clear(key);
  }
}

}  // namespace sluice::fsm::testing

namespace sluice::fsm::testing {

inline std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace sluice::fsm::testing

/// Declares `std::string variable` with the value of the environment
/// variable `name`; when it is missing, fails the test under
/// SLUICE_REQUIRE_SERVICES=1 and skips it otherwise.
#define SLUICE_FSM_REQUIRE_ENV(variable, name)                                                   \
  const std::string variable = ::sluice::fsm::testing::env_or_empty(name);                       \
  if (variable.empty()) {                                                                        \
    if (::sluice::fsm::testing::env_or_empty("SLUICE_REQUIRE_SERVICES") == "1") {                \
      FAIL() << name " is not set although SLUICE_REQUIRE_SERVICES=1";                           \
    }                                                                                            \
    GTEST_SKIP() << name " is not set; run the tests under scripts/with-services.sh";            \
  }
