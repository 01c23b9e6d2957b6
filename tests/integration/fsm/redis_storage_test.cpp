// RedisStorage against the Redis server of scripts/with-services.sh. Two
// redis::Client objects stand for two processes of one bot.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

#include <sluice/fsm/storage.hpp>
#include <sluice/redis/client.hpp>

#include "unit/fsm/storage_checks.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using sluice::fsm::KeyLock;
using sluice::fsm::RedisStorage;
using sluice::fsm::RedisStorageOptions;
using sluice::fsm::StateRecord;
using sluice::fsm::StorageKey;
using sluice::fsm::testing::record;
using sluice::fsm::testing::run_test;

// A key prefix unique to this test and process, so that tests sharing the
// server do not see each other's keys.
std::string unique_prefix() {
  return "sluice-test:fsm:" + std::to_string(::getpid()) + ":" +
         ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

RedisStorageOptions storage_options(const std::string& prefix) {
  RedisStorageOptions options;
  options.prefix = prefix;
  options.jitter_seed = 7;
  return options;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

// Two processes sharing one Redis: each has its own client and storage, so
// only the Redis lock excludes one from the other.
struct TwoProcesses {
  TwoProcesses(asio::io_context& io, const std::string& url, const RedisStorageOptions& options)
      : first_client(io.get_executor(), {.url = url}),
        second_client(io.get_executor(), {.url = url}),
        first(first_client, options),
        second(second_client, options) {}

  // Checks that no lock is left for `key`, then closes both processes.
  asio::awaitable<void> finish(const StorageKey& key) {
    EXPECT_EQ(first.lock_entries(), 0u);
    EXPECT_EQ(second.lock_entries(), 0u);
    std::optional<std::string> lock_left = co_await first_client.get(first.lock_key(key));
    EXPECT_FALSE(lock_left.has_value());
    co_await first.close();
    co_await second.close();
    co_await first_client.close();
    co_await second_client.close();
  }

  sluice::redis::Client first_client;
  sluice::redis::Client second_client;
  RedisStorage first;
  RedisStorage second;
};

TEST(RedisStorage, SetGetAndClear) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client client(io.get_executor(), {.url = url});
    RedisStorage storage(client, storage_options(prefix));
    co_await sluice::fsm::testing::check_set_get_clear(storage, 1);
    co_await storage.close();
    co_await client.close();
  });
}

TEST(RedisStorage, StateSurvivesRestart) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  const StorageKey key{.bot_id = 1, .chat_id = -5, .user_id = 6};
  const StateRecord saved = record("signup:email", {{"name", "Ann"}});
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client client(io.get_executor(), {.url = url});
    RedisStorage storage(client, storage_options(prefix));
    co_await storage.set(key, saved, 1h);
    co_await storage.close();
    co_await client.close();
  });
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client client(io.get_executor(), {.url = url});
    RedisStorage storage(client, storage_options(prefix));
    std::optional<StateRecord> loaded = co_await storage.get(key);
    EXPECT_EQ(loaded, std::optional<StateRecord>(saved));
    co_await storage.clear(key);
    co_await storage.close();
    co_await client.close();
  });
}

TEST(RedisStorage, RecordExpiresAfterTtl) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client client(io.get_executor(), {.url = url});
    RedisStorage storage(client, storage_options(prefix));
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};
    const StateRecord waiting = record("waiting");
    co_await storage.set(key, waiting, 300ms);
    const std::string redis_key = storage.state_key(key);
    sluice::redis::Reply ttl = co_await client.command("PTTL", redis_key);
    EXPECT_GT(ttl.as_integer(), 0);
    EXPECT_LE(ttl.as_integer(), 300);

    // Expiry is the server's: poll until the record is gone, bounded.
    const auto deadline = Clock::now() + 5s;
    bool gone = false;
    while (!gone && Clock::now() < deadline) {
      std::optional<StateRecord> current = co_await storage.get(key);
      gone = !current.has_value();
      if (!gone) {
        co_await sleep_for(50ms);
      }
    }
    EXPECT_TRUE(gone);
    co_await storage.close();
    co_await client.close();
  });
}

TEST(RedisStorage, MoveChatMovesEveryRecord) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client client(io.get_executor(), {.url = url});
    RedisStorage storage(client, storage_options(prefix));
    co_await sluice::fsm::testing::check_move_chat(storage, 1);
    co_await storage.close();
    co_await client.close();
  });
}

TEST(RedisStorage, LockExcludesSecondClient) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    TwoProcesses processes(io, url, storage_options(prefix));
    RedisStorage& first = processes.first;
    RedisStorage& second = processes.second;
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};

    std::vector<std::string> trace;
    KeyLock held = co_await first.lock(key);
    trace.push_back("first locked");
    bool second_locked = false;
    auto contender = [&]() -> asio::awaitable<void> {
      KeyLock lock = co_await second.lock(key);
      second_locked = true;
      trace.push_back("second locked");
      co_await lock.release();
    };
    sluice::runtime::TaskSet tasks(io.get_executor(), "contender");
    tasks.spawn("second", contender());

    // Twenty round trips of the first client while the second retries.
    for (int i = 0; i < 20; ++i) {
      co_await processes.first_client.ping();
    }
    co_await sleep_for(100ms);
    EXPECT_FALSE(second_locked);
    trace.push_back("first releases");
    co_await held.release();
    co_await tasks.join();

    const std::vector<std::string> expected = {"first locked", "first releases", "second locked"};
    EXPECT_EQ(trace, expected);
    co_await processes.finish(key);
  });
}

TEST(RedisStorage, LockReleasedWhenHolderCancelled) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client first_client(io.get_executor(), {.url = url});
    sluice::redis::Client second_client(io.get_executor(), {.url = url});
    RedisStorage first(first_client, storage_options(prefix));
    RedisStorageOptions second_options = storage_options(prefix);
    // Far below lock_ttl (30 s): only a release, not expiry, lets the
    // second client in.
    second_options.lock_timeout = 5s;
    RedisStorage second(second_client, second_options);
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};

    // The holder takes the lock and waits until cancelled; its KeyLock is
    // destroyed during unwinding without release().
    bool holder_locked = false;
    bool holder_cancelled = false;
    auto holder = [&]() -> asio::awaitable<void> {
      KeyLock lock = co_await first.lock(key);
      holder_locked = true;
      try {
        co_await sleep_for(60s);
      } catch (const boost::system::system_error&) {
        holder_cancelled = true;
        throw;
      }
    };
    asio::cancellation_signal cancel;
    asio::co_spawn(io, holder, asio::bind_cancellation_slot(cancel.slot(), [](std::exception_ptr) {}));
    const auto lock_deadline = Clock::now() + 5s;
    while (!holder_locked && Clock::now() < lock_deadline) {
      co_await sleep_for(5ms);
    }
    EXPECT_TRUE(holder_locked);
    cancel.emit(asio::cancellation_type::terminal);

    const auto started = Clock::now();
    KeyLock taken = co_await second.lock(key);
    const auto waited = Clock::now() - started;
    EXPECT_TRUE(taken);
    EXPECT_TRUE(holder_cancelled);
    EXPECT_LT(waited, 5s);
    co_await taken.release();

    // A waiter cancelled while it retries leaves no lock behind.
    KeyLock blocker = co_await first.lock(key);
    bool waiter_aborted = false;
    asio::cancellation_signal cancel_waiter;
    auto waiter = [&]() -> asio::awaitable<void> {
      try {
        KeyLock never = co_await second.lock(key);
      } catch (const boost::system::system_error& error) {
        waiter_aborted = error.code() == asio::error::operation_aborted;
      }
    };
    bool waiter_done = false;
    asio::co_spawn(io, waiter,
                   asio::bind_cancellation_slot(cancel_waiter.slot(), [&](std::exception_ptr) { waiter_done = true; }));
    co_await sleep_for(50ms);
    cancel_waiter.emit(asio::cancellation_type::terminal);
    const auto waiter_deadline = Clock::now() + 5s;
    while (!waiter_done && Clock::now() < waiter_deadline) {
      co_await sleep_for(5ms);
    }
    EXPECT_TRUE(waiter_aborted);
    co_await blocker.release();
    co_await second.close();
    co_await first.close();
    std::optional<std::string> lock_left = co_await first_client.get(first.lock_key(key));
    EXPECT_FALSE(lock_left.has_value());
    EXPECT_EQ(second.lock_entries(), 0u);
    co_await first_client.close();
    co_await second_client.close();
  });
}

TEST(RedisStorage, DeadHolderLockExpires) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client client(io.get_executor(), {.url = url});
    RedisStorageOptions options = storage_options(prefix);
    options.lock_timeout = 5s;
    RedisStorage storage(client, options);
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};

    // A process that took the lock with a 400 ms lock_ttl and died.
    const std::string lock_key = storage.lock_key(key);
    const sluice::redis::SetOptions dead_holder{.expire = 400ms};
    co_await client.set(lock_key, "token-of-a-dead-process", dead_holder);

    const auto started = Clock::now();
    KeyLock lock = co_await storage.lock(key);
    const auto waited = Clock::now() - started;
    EXPECT_TRUE(lock);
    EXPECT_GE(waited, 300ms);
    EXPECT_LT(waited, 5s);
    std::optional<std::string> token = co_await client.get(lock_key);
    EXPECT_TRUE(token.has_value());
    EXPECT_NE(token.value_or(""), "token-of-a-dead-process");
    co_await lock.release();
    co_await storage.close();
    co_await client.close();
  });
}

TEST(RedisStorage, HeldLockOutlivesLockTtl) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    RedisStorageOptions options = storage_options(prefix);
    options.lock_ttl = 300ms;
    options.lock_timeout = 600ms;
    TwoProcesses processes(io, url, options);
    RedisStorage& first = processes.first;
    RedisStorage& second = processes.second;
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};

    // The first holder keeps the lock for three lock_ttls, while the
    // second process waits twice lock_ttl in vain.
    KeyLock held = co_await first.lock(key);
    bool timed_out = false;
    try {
      KeyLock never = co_await second.lock(key);
    } catch (const sluice::fsm::LockTimeout&) {
      timed_out = true;
    }
    co_await sleep_for(300ms);
    EXPECT_TRUE(timed_out) << "the lock expired while held";
    std::optional<std::string> still_held = co_await processes.first_client.get(first.lock_key(key));
    EXPECT_TRUE(still_held.has_value()) << "three lock_ttls after it was taken";

    co_await held.release();
    KeyLock after = co_await second.lock(key);
    EXPECT_TRUE(after);
    co_await after.release();
    co_await processes.finish(key);
  });
}

TEST(RedisStorage, LockWithoutRenewalExpiresWhileHeld) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client client(io.get_executor(), {.url = url});
    RedisStorageOptions options = storage_options(prefix);
    options.lock_ttl = 200ms;
    options.renew_locks = false;
    RedisStorage storage(client, options);
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};

    KeyLock held = co_await storage.lock(key);
    co_await sleep_for(400ms);
    std::optional<std::string> lock_left = co_await client.get(storage.lock_key(key));
    EXPECT_FALSE(lock_left.has_value());
    co_await held.release();
    co_await storage.close();
    co_await client.close();
  });
}

TEST(RedisStorage, LockTimeoutNamesTheKey) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_REDIS_URL");
  const std::string prefix = unique_prefix();
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    sluice::redis::Client client(io.get_executor(), {.url = url});
    RedisStorageOptions options = storage_options(prefix);
    options.lock_timeout = 200ms;
    RedisStorage storage(client, options);
    const StorageKey key{.bot_id = 1, .chat_id = 2, .user_id = 3};
    const std::string lock_key = storage.lock_key(key);
    const sluice::redis::SetOptions other_holder{.expire = 10s};
    co_await client.set(lock_key, "token-of-another-process", other_holder);

    std::string timeout_key;
    std::string message;
    try {
      KeyLock never = co_await storage.lock(key);
    } catch (const sluice::fsm::LockTimeout& error) {
      timeout_key = error.lock_key();
      message = error.what();
    }
    EXPECT_EQ(timeout_key, lock_key);
    EXPECT_NE(message.find(lock_key), std::string::npos) << message;
    EXPECT_EQ(storage.lock_entries(), 0u);
    std::optional<std::string> token = co_await client.get(lock_key);
    EXPECT_EQ(token.value_or(""), "token-of-another-process");
    co_await client.del(lock_key);
    co_await storage.close();
    co_await client.close();
  });
}

}  // namespace
