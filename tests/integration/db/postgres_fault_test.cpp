// Tests that restart or freeze the shared PostgreSQL server; their program
// runs alone (RUN_SERIAL) so that no other test sees the outage.

#include <sluice/db/database.hpp>

#include <gtest/gtest.h>

#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/offload.hpp>

#include "integration/db/postgres_activity.hpp"
#include "integration/db/postgres_support.hpp"
#include "unit/db/coro_test_support.hpp"

namespace sluice::db::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

DatabaseOptions pg_options(const std::string& app) {
  DatabaseOptions options;
  options.pool.hold_warning_threshold = 0ms;
  options.postgres.application_name = app;
  return options;
}

struct LoadResult {
  long succeeded = 0;
  long failed = 0;
  long failed_late = 0;  // failures of requests started 1 s after the server was back
  Clock::duration slowest_failure{};
  std::string last_late_error;
};

// Queries in a loop until `stop`; `back_at` is set once the server is up.
asio::awaitable<void> query_loop(Database* db, const Clock::time_point* back_at, const bool* stop,
                                 LoadResult* result) {
  while (!*stop) {
    const auto start = Clock::now();
    std::string error;
    try {
      auto rows = co_await db->query("SELECT 1");
      ++result->succeeded;
      continue;
    } catch (const std::exception& e) {
      error = e.what();
    }
    ++result->failed;
    result->slowest_failure = std::max(result->slowest_failure, Clock::now() - start);
    if (*back_at != Clock::time_point{} && start > *back_at + 1s) {
      ++result->failed_late;
      result->last_late_error = error;
    }
    co_await sleep_for(20ms);
  }
}

TEST(PostgresFault, RestartUnder64Queriers) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  runtime::BlockingPool blocking(1);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = pg_options("sluice-restart");
    options.pool.pool_pre_ping = true;
    Database db(ioc.get_executor(), url, options);
    Clock::time_point back_at{};
    bool stop = false;
    LoadResult result;
    WaitGroup group(ioc.get_executor());
    for (int i = 0; i < 64; ++i) {
      group.add();
      asio::co_spawn(ioc.get_executor(), query_loop(&db, &back_at, &stop, &result),
                     [&](std::exception_ptr) { group.done(); });
    }
    co_await sleep_for(300ms);
    const auto before_restart = result.succeeded;

    // pg_ctl blocks until the server is back; it runs on the blocking pool
    // while the loop keeps querying.
    auto restart = [] { return pg_ctl("-m fast -w -t 60 restart"); };
    const int status = co_await runtime::offload(blocking, std::move(restart));
    back_at = Clock::now();
    co_await sleep_for(3s);
    stop = true;
    co_await group.wait();
    const auto stats = db.stats();

    EXPECT_EQ(status, 0);
    EXPECT_GT(before_restart, 0);
    EXPECT_GT(result.succeeded, before_restart);
    EXPECT_EQ(result.failed_late, 0) << result.last_late_error;
    EXPECT_LT(result.slowest_failure, 5s) << "failures are fast, never pool_timeout (30 s)";
    EXPECT_EQ(stats.in_use, 0u);
    EXPECT_EQ(stats.waiters, 0u);
    EXPECT_EQ(stats.cleaning, 0u);
    EXPECT_EQ(stats.open, stats.idle);
    EXPECT_LE(stats.open, 5u) << "back to pool_size";

    Database observer(ioc.get_executor(), url, pg_options("sluice-observer"));
    const auto server_side =
        co_await settled_connections(observer, "sluice-restart", static_cast<std::int64_t>(stats.open));
    EXPECT_EQ(server_side, static_cast<std::int64_t>(stats.open)) << "no connection leaked on the server";
  });
}

// Returns true once the server runs a query, or false after `limit`: a
// restart made by an earlier test may still be finishing.
asio::awaitable<bool> wait_until_serving(asio::any_io_executor executor, std::string url,
                                         Clock::duration limit) {
  const auto give_up = Clock::now() + limit;
  while (Clock::now() < give_up) {
    try {
      Database probe(executor, url, pg_options("sluice-probe"));
      co_await probe.query("SELECT 1");
      co_return true;
    } catch (const std::exception&) {
    }
    co_await sleep_for(100ms);
  }
  co_return false;
}

TEST(PostgresFault, FrozenServerDetectedAtQueryTimeout) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    const bool serving = co_await wait_until_serving(ioc.get_executor(), url, 30s);
    SLUICE_CO_ASSERT_EQ(serving, true);
    auto options = pg_options("sluice-freeze");
    options.postgres.query_timeout = 1s;
    options.pool.connect_timeout = 1s;
    Database db(ioc.get_executor(), url, options);
    co_await db.query("SELECT 1");

    std::string error;
    Clock::duration took{};
    {
      ServerFreeze freeze;
      EXPECT_GT(freeze.size(), 1u);
      const auto start = Clock::now();
      try {
        co_await db.query("SELECT 1");
      } catch (const QueryTimeoutError& e) {
        error = e.what();
      }
      took = Clock::now() - start;
    }

    EXPECT_FALSE(error.empty());
    EXPECT_GE(took, 900ms);
    EXPECT_LT(took, 3s);
    EXPECT_EQ(db.stats().open, 0u) << "the timed-out connection is closed";
    auto rows = co_await db.query("SELECT 2");
    EXPECT_EQ(rows.at(0).get<int>(0), 2) << "a new connection works once the server runs again";
  });
}

}  // namespace
}  // namespace sluice::db::testing
