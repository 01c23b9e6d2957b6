// SqlStorage against the PostgreSQL server of scripts/with-services.sh.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include <sluice/db/database.hpp>
#include <sluice/fsm/storage.hpp>

#include "unit/fsm/storage_checks.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::fsm::SqlStorage;
using sluice::fsm::SqlStorageOptions;
using sluice::fsm::StateRecord;
using sluice::fsm::StorageKey;
using sluice::fsm::testing::record;
using sluice::fsm::testing::run_test;
using sluice::fsm::testing::test_bot_id;

// Runs `body` with a SqlStorage on a new Database at `url`, then closes the
// database.
asio::awaitable<void> with_postgres(asio::io_context& io, std::string url, SqlStorageOptions options,
                                    std::function<asio::awaitable<void>(SqlStorage&)> body) {
  sluice::db::Database database(io.get_executor(), url);
  SqlStorage storage(database, std::move(options));
  std::exception_ptr error;
  try {
    co_await storage.create_tables();
    co_await body(storage);
  } catch (...) {
    error = std::current_exception();
  }
  co_await storage.close();
  co_await database.close();
  if (error) {
    std::rethrow_exception(error);
  }
}

TEST(PostgresStorage, SetGetAndClear) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_POSTGRES_URL");
  const std::int64_t bot_id = test_bot_id(11);
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(SqlStorage&)> body = [bot_id](SqlStorage& storage) -> asio::awaitable<void> {
      co_await sluice::fsm::testing::check_set_get_clear(storage, bot_id);
    };
    SqlStorageOptions options;
    co_await with_postgres(io, url, std::move(options), std::move(body));
  });
}

TEST(PostgresStorage, StateSurvivesRestart) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_POSTGRES_URL");
  const StorageKey key{.bot_id = test_bot_id(12), .chat_id = -5, .user_id = 6};
  const StateRecord saved = record("signup:email", {{"name", "Ann"}, {"tags", boost::json::array{"a", "b"}}});
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(SqlStorage&)> write = [&](SqlStorage& storage) -> asio::awaitable<void> {
      co_await storage.set(key, saved, 1h);
    };
    SqlStorageOptions options;
    co_await with_postgres(io, url, std::move(options), std::move(write));
  });
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(SqlStorage&)> read = [&](SqlStorage& storage) -> asio::awaitable<void> {
      std::optional<StateRecord> loaded = co_await storage.get(key);
      EXPECT_EQ(loaded, std::optional<StateRecord>(saved));
      co_await storage.clear(key);
    };
    SqlStorageOptions options;
    co_await with_postgres(io, url, std::move(options), std::move(read));
  });
}

TEST(PostgresStorage, RecordExpiresAfterTtl) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_POSTGRES_URL");
  const std::int64_t bot_id = test_bot_id(13);
  auto now = std::make_shared<std::chrono::system_clock::time_point>(std::chrono::system_clock::now());
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(SqlStorage&)> body = [&](SqlStorage& storage) -> asio::awaitable<void> {
      const StorageKey key{.bot_id = bot_id, .chat_id = 2, .user_id = 3};
      const StateRecord waiting = record("waiting");
      co_await storage.set(key, waiting, 10s);
      *now += 9s;
      std::optional<StateRecord> before = co_await storage.get(key);
      EXPECT_TRUE(before.has_value());
      *now += 1s;
      std::optional<StateRecord> after = co_await storage.get(key);
      EXPECT_FALSE(after.has_value());
    };
    SqlStorageOptions options{.clock = [now] { return *now; }};
    co_await with_postgres(io, url, std::move(options), std::move(body));
  });
}

TEST(PostgresStorage, MoveChatMovesEveryRecord) {
  SLUICE_FSM_REQUIRE_ENV(url, "SLUICE_TEST_POSTGRES_URL");
  const std::int64_t bot_id = test_bot_id(14);
  run_test([&](asio::io_context& io) -> asio::awaitable<void> {
    std::function<asio::awaitable<void>(SqlStorage&)> body = [bot_id](SqlStorage& storage) -> asio::awaitable<void> {
      co_await sluice::fsm::testing::check_move_chat(storage, bot_id);
    };
    SqlStorageOptions options;
    co_await with_postgres(io, url, std::move(options), std::move(body));
  });
}

}  // namespace
