// Tests of sluice::fsm without servers: keys, MemoryStorage (values, expiry,
// locks), Conversation, and SqlStorage on a SQLite file.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

#include <sluice/db/database.hpp>
#include <sluice/fsm/conversation.hpp>
#include <sluice/fsm/storage.hpp>
#include <sluice/runtime/blocking_pool.hpp>

#include "unit/fsm/storage_checks.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::fsm::KeyLock;
using sluice::fsm::KeyStrategy;
using sluice::fsm::MemoryStorage;
using sluice::fsm::StateRecord;
using sluice::fsm::StorageKey;
using sluice::fsm::testing::record;
using sluice::fsm::testing::run_test;

// Lets every handler that is ready run once more.
asio::awaitable<void> yield() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
}

// A steady clock that only moves when the test moves it.
struct ManualClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
};

// -- keys ---------------------------------------------------------------------

TEST(StorageKey, StringFormRoundTrips) {
  const StorageKey plain{.bot_id = 123, .chat_id = -100987, .user_id = 42};
  const StorageKey topic{.bot_id = 123, .chat_id = -100987, .user_id = 42, .thread_id = 7};
  EXPECT_EQ(plain.to_string(), "123:-100987:42");
  EXPECT_EQ(topic.to_string(), "123:-100987:42:7");
  EXPECT_EQ(StorageKey::parse(plain.to_string()), std::optional<StorageKey>(plain));
  EXPECT_EQ(StorageKey::parse(topic.to_string()), std::optional<StorageKey>(topic));
}

TEST(StorageKey, ParseRejectsMalformedText) {
  for (const char* text : {"", "1", "1:2", "1:2:", "1:2:3:", "1:2:3:4:5", "a:2:3", "1:2:3x", "1::3"}) {
    EXPECT_FALSE(StorageKey::parse(text).has_value()) << text;
  }
}

TEST(MakeKey, StrategiesPickChatAndUser) {
  const auto per_user = sluice::fsm::make_key(KeyStrategy::chat_and_user, 1, -50, 7, 3);
  const auto per_topic = sluice::fsm::make_key(KeyStrategy::chat_and_user_in_topic, 1, -50, 7, 3);
  const auto per_chat = sluice::fsm::make_key(KeyStrategy::chat, 1, -50, 7, 3);
  const auto per_user_everywhere = sluice::fsm::make_key(KeyStrategy::user, 1, -50, 7, 3);
  const auto no_chat = sluice::fsm::make_key(KeyStrategy::chat_and_user, 1, std::nullopt, 7);
  const auto no_user = sluice::fsm::make_key(KeyStrategy::chat_and_user, 1, -50, std::nullopt);
  const auto neither = sluice::fsm::make_key(KeyStrategy::chat_and_user, 1, std::nullopt, std::nullopt);
  ASSERT_TRUE(per_user.has_value());
  ASSERT_TRUE(per_topic.has_value());
  ASSERT_TRUE(per_chat.has_value());
  ASSERT_TRUE(per_user_everywhere.has_value());
  ASSERT_TRUE(no_chat.has_value());
  ASSERT_TRUE(no_user.has_value());
  EXPECT_EQ(per_user->to_string(), "1:-50:7");
  EXPECT_EQ(per_topic->to_string(), "1:-50:7:3");
  EXPECT_EQ(per_chat->to_string(), "1:-50:-50");
  EXPECT_EQ(per_user_everywhere->to_string(), "1:7:7");
  EXPECT_EQ(no_chat->to_string(), "1:7:7");
  EXPECT_EQ(no_user->to_string(), "1:-50:-50");
  EXPECT_FALSE(neither.has_value());
}

// -- memory storage -----------------------------------------------------------

TEST(MemoryStorage, SetGetAndClear) {
  run_test([](asio::io_context&) -> asio::awaitable<void> {
    MemoryStorage storage;
    co_await sluice::fsm::testing::check_set_get_clear(storage, 1);
    EXPECT_EQ(storage.size(), 0u);
  });
}

TEST(MemoryStorage, MoveChatMovesEveryRecord) {
  run_test([](asio::io_context&) -> asio::awaitable<void> {
    MemoryStorage storage;
    co_await sluice::fsm::testing::check_move_chat(storage, 1);
  });
}

TEST(MemoryStorage, RecordExpiresAfterTtl) {
  run_test([](asio::io_context&) -> asio::awaitable<void> {
    auto clock = std::make_shared<ManualClock>();
    MemoryStorage storage({.clock = [clock] { return clock->now; }});
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 2};
    const StateRecord waiting = record("waiting");
    co_await storage.set(key, waiting, 10s);

    clock->now += 9s;
    std::optional<StateRecord> before = co_await storage.get(key);
    EXPECT_TRUE(before.has_value());
    clock->now += 1s;
    std::optional<StateRecord> after = co_await storage.get(key);
    EXPECT_FALSE(after.has_value());
    EXPECT_EQ(storage.size(), 0u);
  });
}

TEST(MemoryStorage, SweepDropsUnreadExpiredRecords) {
  run_test([](asio::io_context&) -> asio::awaitable<void> {
    auto clock = std::make_shared<ManualClock>();
    MemoryStorage storage({.sweep_batch = 4, .clock = [clock] { return clock->now; }});
    const StateRecord waiting = record("waiting");
    for (std::int64_t user = 1; user <= 20; ++user) {
      const StorageKey key{.bot_id = 1, .chat_id = user, .user_id = user};
      co_await storage.set(key, waiting, 1s);
    }
    EXPECT_EQ(storage.size(), 20u);
    clock->now += 2s;
    // Each set checks four records, so ten sets check 40 records, more than
    // the 30 stored at the end.
    for (std::int64_t user = 100; user < 110; ++user) {
      const StorageKey key{.bot_id = 1, .chat_id = user, .user_id = user};
      co_await storage.set(key, waiting, std::nullopt);
    }
    EXPECT_EQ(storage.size(), 10u);
  });
}

TEST(MemoryStorage, LockSerialisesOneKey) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    MemoryStorage storage;
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};
    std::vector<std::string> trace;
    auto worker = [&](std::string name) -> asio::awaitable<void> {
      KeyLock lock = co_await storage.lock(key);
      trace.push_back(name + " start");
      for (int i = 0; i < 5; ++i) {
        co_await yield();
      }
      trace.push_back(name + " end");
    };
    sluice::runtime::TaskSet tasks(io.get_executor(), "workers");
    tasks.spawn("a", worker("a"));
    tasks.spawn("b", worker("b"));
    co_await tasks.join();

    const std::vector<std::string> expected = {"a start", "a end", "b start", "b end"};
    EXPECT_EQ(trace, expected);
    EXPECT_EQ(storage.lock_entries(), 0u);
  });
}

TEST(MemoryStorage, LockOfOtherKeyDoesNotWait) {
  run_test([](asio::io_context&) -> asio::awaitable<void> {
    MemoryStorage storage;
    const StorageKey first{.bot_id = 1, .chat_id = 2, .user_id = 3};
    const StorageKey second{.bot_id = 1, .chat_id = 2, .user_id = 4};
    KeyLock held = co_await storage.lock(first);
    KeyLock other = co_await storage.lock(second);
    EXPECT_TRUE(held);
    EXPECT_TRUE(other);
    EXPECT_EQ(storage.lock_entries(), 2u);
    co_await other.release();
    co_await held.release();
    EXPECT_EQ(storage.lock_entries(), 0u);
  });
}

TEST(MemoryStorage, CancelledWaiterTakesNoLock) {
  run_test([](asio::io_context& io) -> asio::awaitable<void> {
    MemoryStorage storage;
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};
    std::optional<KeyLock> held(co_await storage.lock(key));

    bool waiter_done = false;
    bool waiter_aborted = false;
    bool waiter_got_lock = false;
    asio::cancellation_signal cancel;
    auto waiter = [&]() -> asio::awaitable<void> {
      try {
        KeyLock lock = co_await storage.lock(key);
        waiter_got_lock = true;
      } catch (const boost::system::system_error& error) {
        waiter_aborted = error.code() == asio::error::operation_aborted;
      }
      waiter_done = true;
    };
    asio::co_spawn(io, waiter, asio::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr) {}));
    co_await yield();
    EXPECT_EQ(storage.lock_entries(), 1u);
    cancel.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 10 && !waiter_done; ++i) {
      co_await yield();
    }
    EXPECT_TRUE(waiter_done);
    EXPECT_TRUE(waiter_aborted);
    EXPECT_FALSE(waiter_got_lock);

    // The lock passes on to the next waiter as if the cancelled one had
    // never queued.
    held.reset();
    KeyLock next = co_await storage.lock(key);
    EXPECT_TRUE(next);
    co_await next.release();
    EXPECT_EQ(storage.lock_entries(), 0u);
  });
}

TEST(MemoryStorage, LockEntriesEmptyAfterManyKeys) {
  run_test([](asio::io_context&) -> asio::awaitable<void> {
    MemoryStorage storage;
    for (std::int64_t user = 1; user <= 1000; ++user) {
      const StorageKey key{.bot_id = 1, .chat_id = 5, .user_id = user};
      KeyLock lock = co_await storage.lock(key);
      EXPECT_LE(storage.lock_entries(), 1u);
    }
    EXPECT_EQ(storage.lock_entries(), 0u);
  });
}

// -- conversation -------------------------------------------------------------

TEST(Conversation, StateAndDataWriteThrough) {
  run_test([](asio::io_context&) -> asio::awaitable<void> {
    MemoryStorage storage;
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};
    sluice::fsm::Conversation conversation(storage, key, std::nullopt);
    EXPECT_EQ(conversation.state(), "");
    EXPECT_TRUE(conversation.data().empty());

    co_await conversation.set_state("signup:email");
    boost::json::object name{{"name", "Ann"}};
    co_await conversation.update_data(std::move(name));
    boost::json::object email{{"email", "ann@example.org"}, {"name", "Anna"}};
    co_await conversation.update_data(std::move(email));

    const StateRecord expected = record("signup:email", {{"name", "Anna"}, {"email", "ann@example.org"}});
    EXPECT_EQ(conversation.get(), std::optional<StateRecord>(expected));
    std::optional<StateRecord> stored = co_await storage.get(key);
    EXPECT_EQ(stored, std::optional<StateRecord>(expected));

    co_await conversation.clear();
    EXPECT_FALSE(conversation.get().has_value());
    std::optional<StateRecord> cleared = co_await storage.get(key);
    EXPECT_FALSE(cleared.has_value());
  });
}

TEST(Conversation, TtlAppliesToLaterWrites) {
  run_test([](asio::io_context&) -> asio::awaitable<void> {
    auto clock = std::make_shared<ManualClock>();
    MemoryStorage storage({.clock = [clock] { return clock->now; }});
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};
    sluice::fsm::Conversation conversation(storage, key, std::nullopt, 1h);
    co_await conversation.set_state("a", 5s);
    clock->now += 4s;
    boost::json::object values{{"x", 1}};
    co_await conversation.update_data(std::move(values));
    clock->now += 4s;
    std::optional<StateRecord> renewed = co_await storage.get(key);
    EXPECT_TRUE(renewed.has_value());
    clock->now += 2s;
    std::optional<StateRecord> expired = co_await storage.get(key);
    EXPECT_FALSE(expired.has_value());
  });
}

// -- SQLite -------------------------------------------------------------------

// A SQLite file in the temporary directory, removed by the destructor.
struct TempDatabaseFile {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("sluice-fsm-test-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".db");
  TempDatabaseFile() { remove(); }
  ~TempDatabaseFile() { remove(); }
  void remove() const {
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(path.string() + suffix);
    }
  }
  std::string url() const { return "sqlite:///" + path.string(); }
};

// Runs `body` with a SqlStorage on a new Database over `file`, then closes
// the database and joins its blocking pool, whose threads must be gone
// before the io_context is destroyed.
asio::awaitable<void> with_sqlite(asio::io_context& io, const TempDatabaseFile& file,
                                  sluice::fsm::SqlStorageOptions options,
                                  std::function<asio::awaitable<void>(sluice::fsm::SqlStorage&)> body) {
  sluice::runtime::BlockingPool blocking(2);
  sluice::db::DatabaseOptions database_options;
  database_options.sqlite.blocking_pool = &blocking;
  sluice::db::Database database(io.get_executor(), file.url(), database_options);
  sluice::fsm::SqlStorage storage(database, std::move(options));
  co_await storage.create_tables();
  std::exception_ptr error;
  try {
    co_await body(storage);
  } catch (...) {
    error = std::current_exception();
  }
  co_await storage.close();
  co_await database.close();
  blocking.join();
  if (error) {
    std::rethrow_exception(error);
  }
}

TEST(SqliteStorage, SetGetAndClear) {
  TempDatabaseFile file;
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(sluice::fsm::SqlStorage&)> body =
        [](sluice::fsm::SqlStorage& storage) -> asio::awaitable<void> {
      co_await sluice::fsm::testing::check_set_get_clear(storage, 1);
    };
    sluice::fsm::SqlStorageOptions no_options;
    co_await with_sqlite(io, file, no_options, std::move(body));
  });
}

TEST(SqliteStorage, StateSurvivesRestart) {
  TempDatabaseFile file;
  const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};
  const StateRecord saved = record("signup:email", {{"name", "Ann"}});
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(sluice::fsm::SqlStorage&)> write =
        [&](sluice::fsm::SqlStorage& storage) -> asio::awaitable<void> {
      co_await storage.set(key, saved, std::nullopt);
    };
    sluice::fsm::SqlStorageOptions no_options;
    co_await with_sqlite(io, file, no_options, std::move(write));
  });
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(sluice::fsm::SqlStorage&)> read =
        [&](sluice::fsm::SqlStorage& storage) -> asio::awaitable<void> {
      std::optional<StateRecord> loaded = co_await storage.get(key);
      EXPECT_EQ(loaded, std::optional<StateRecord>(saved));
    };
    sluice::fsm::SqlStorageOptions no_options;
    co_await with_sqlite(io, file, no_options, std::move(read));
  });
}

TEST(SqliteStorage, RecordExpiresAfterTtl) {
  TempDatabaseFile file;
  auto now = std::make_shared<std::chrono::system_clock::time_point>(std::chrono::hours(24 * 365 * 50));
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(sluice::fsm::SqlStorage&)> body =
        [&](sluice::fsm::SqlStorage& storage) -> asio::awaitable<void> {
      const StorageKey short_lived{.bot_id = 1, .chat_id = 2, .user_id = 3};
      const StorageKey long_lived{.bot_id = 1, .chat_id = 2, .user_id = 4};
      const StorageKey unread{.bot_id = 1, .chat_id = 2, .user_id = 5};
      const StateRecord waiting = record("waiting");
      co_await storage.set(short_lived, waiting, 10s);
      co_await storage.set(long_lived, waiting, 1h);
      co_await storage.set(unread, waiting, 10s);
      *now += 9s;
      std::optional<StateRecord> before = co_await storage.get(short_lived);
      EXPECT_TRUE(before.has_value());
      *now += 1s;
      std::optional<StateRecord> after = co_await storage.get(short_lived);
      EXPECT_FALSE(after.has_value());
      std::optional<StateRecord> kept = co_await storage.get(long_lived);
      EXPECT_TRUE(kept.has_value());
      const std::uint64_t deleted = co_await storage.delete_expired();
      EXPECT_EQ(deleted, 1u);
    };
    sluice::fsm::SqlStorageOptions options{.clock = [now] { return *now; }};
    co_await with_sqlite(io, file, std::move(options), std::move(body));
  });
}

TEST(SqliteStorage, MoveChatMovesEveryRecord) {
  TempDatabaseFile file;
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(sluice::fsm::SqlStorage&)> body =
        [](sluice::fsm::SqlStorage& storage) -> asio::awaitable<void> {
      co_await sluice::fsm::testing::check_move_chat(storage, 1);
    };
    sluice::fsm::SqlStorageOptions no_options;
    co_await with_sqlite(io, file, no_options, std::move(body));
  });
}

TEST(SqliteStorage, LockSerialisesOneKey) {
  TempDatabaseFile file;
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(sluice::fsm::SqlStorage&)> body =
        [&io](sluice::fsm::SqlStorage& storage) -> asio::awaitable<void> {
      const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};
      std::vector<std::string> trace;
      auto worker = [&](std::string name) -> asio::awaitable<void> {
        KeyLock lock = co_await storage.lock(key);
        trace.push_back(name + " start");
        std::optional<StateRecord> current = co_await storage.get(key);
        StateRecord next = current.value_or(StateRecord{});
        next.state += name;
        co_await storage.set(key, next, std::nullopt);
        trace.push_back(name + " end");
      };
      sluice::runtime::TaskSet tasks(io.get_executor(), "workers");
      tasks.spawn("a", worker("a"));
      tasks.spawn("b", worker("b"));
      co_await tasks.join();
      const std::vector<std::string> expected = {"a start", "a end", "b start", "b end"};
      EXPECT_EQ(trace, expected);
      std::optional<StateRecord> final_record = co_await storage.get(key);
      EXPECT_EQ(final_record.value_or(StateRecord{}).state, "ab");
      EXPECT_EQ(storage.lock_entries(), 0u);
    };
    sluice::fsm::SqlStorageOptions no_options;
    co_await with_sqlite(io, file, no_options, std::move(body));
  });
}

}  // namespace
