#include <sluice/db/database.hpp>
#include <sluice/db/migrate.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sluice/runtime/blocking_pool.hpp>

#include "integration/db/postgres_activity.hpp"
#include "integration/db/postgres_support.hpp"
#include "unit/db/coro_test_support.hpp"
#include "unit/db/transaction_checks.hpp"

namespace sluice::db::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

DatabaseOptions pg_options(const std::string& app, runtime::BlockingPool* blocking = nullptr) {
  DatabaseOptions options;
  options.pool.hold_warning_threshold = 0ms;
  options.postgres.application_name = app;
  options.postgres.blocking_pool = blocking;
  return options;
}

TEST(Postgres, QueriesRoundTripTypes) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), url, pg_options("sluice-types"));
    co_await db.execute("DROP TABLE IF EXISTS db_types");
    co_await db.execute(
        "CREATE TABLE db_types (id bigint PRIMARY KEY, name text, score float8, ok bool, data bytea, small int2)");
    const Blob data{std::byte{0}, std::byte{0xff}, std::byte{'\\'}};
    const std::optional<std::string> no_name;
    co_await db.execute("INSERT INTO db_types VALUES ($1, $2, $3, $4, $5, $6)", 1, "ann's \"name\"", 2.5, true, data,
                        7);
    co_await db.execute("INSERT INTO db_types (id, name) VALUES ($1, $2)", std::int64_t{1} << 40, no_name);
    auto rows = co_await db.query("SELECT id, name, score, ok, data, small FROM db_types ORDER BY id");

    SLUICE_CO_ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].get<std::int64_t>("id"), 1);
    EXPECT_EQ(rows[0].get<std::string>("name"), "ann's \"name\"");
    EXPECT_DOUBLE_EQ(rows[0].get<double>("score"), 2.5);
    EXPECT_TRUE(rows[0].get<bool>("ok"));
    EXPECT_EQ(rows[0].get<Blob>("data"), data);
    EXPECT_EQ(rows[0].get<std::int16_t>("small"), 7);
    EXPECT_EQ(rows[1].get<std::int64_t>(0), std::int64_t{1} << 40);
    EXPECT_THROW(rows[1].get<std::int32_t>(0), ResultError) << "out of range";
    EXPECT_EQ(rows[1].get<std::optional<std::string>>("name"), std::nullopt);
    EXPECT_THROW(rows[1].get<std::string>("name"), ResultError);
    co_await db.close();
  });
}

TEST(Postgres, SqlErrorsCarrySqlstate) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), url, pg_options("sluice-errors"));
    std::string state;
    std::string message;
    try {
      co_await db.query("SELECT * FROM table_that_does_not_exist");
    } catch (const SqlError& e) {
      state = e.sqlstate();
      message = e.what();
    }
    EXPECT_EQ(state, "42P01");
    EXPECT_NE(message.find("table_that_does_not_exist"), std::string::npos) << message;
    EXPECT_NE(message.find("SQLSTATE 42P01"), std::string::npos) << message;

    co_await db.execute("DROP TABLE IF EXISTS db_unique");
    co_await db.execute("CREATE TABLE db_unique (k text PRIMARY KEY)");
    co_await db.execute("INSERT INTO db_unique VALUES ($1)", "a");
    state.clear();
    try {
      co_await db.execute("INSERT INTO db_unique VALUES ($1)", "a");
    } catch (const SqlError& e) {
      state = e.sqlstate();
    }
    EXPECT_EQ(state, "23505");
    auto rows = co_await db.query("SELECT count(*) FROM db_unique");
    EXPECT_EQ(rows.at(0).get<int>(0), 1) << "the connection is usable after an error";
  });
}

TEST(Postgres, StatementCacheCanBeTurnedOff) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), url + "?statement_cache=off", pg_options("sluice-nocache"));
    for (int i = 0; i < 3; ++i) {
      auto rows = co_await db.query("SELECT $1::int + 1", i);
      EXPECT_EQ(rows.at(0).get<int>(0), i + 1);
    }
    auto prepared = co_await db.query("SELECT count(*) FROM pg_prepared_statements");

    EXPECT_EQ(prepared.at(0).get<int>(0), 0);
  });
}

TEST(Postgres, StatementCacheReusesPlans) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = pg_options("sluice-cache");
    options.pool.pool_size = 1;
    options.pool.max_overflow = 0;
    Database db(ioc.get_executor(), url, options);
    for (int i = 0; i < 5; ++i) {
      co_await db.query("SELECT $1::int", i);
    }
    auto prepared = co_await db.query("SELECT count(*) FROM pg_prepared_statements");

    EXPECT_EQ(prepared.at(0).get<int>(0), 2) << "one per distinct statement";
  });
}

TEST(Postgres, TransactionRollsBackUnlessCommitted) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = pg_options("sluice-tx");
    options.pool.pool_size = 1;
    options.pool.max_overflow = 0;
    Database db(ioc.get_executor(), url, options);
    co_await db.execute("DROP TABLE IF EXISTS db_tx");
    co_await db.execute("CREATE TABLE db_tx (v int)");
    {
      auto conn = co_await db.acquire();
      auto tx = co_await conn->begin();
      co_await conn->execute("INSERT INTO db_tx VALUES (1)");
    }
    {
      auto conn = co_await db.acquire();
      {
        auto tx = co_await conn->begin();
        co_await conn->execute("INSERT INTO db_tx VALUES (2)");
      }
      co_await conn->execute("INSERT INTO db_tx VALUES (3)");
      auto tx = co_await conn->begin();
      co_await conn->execute("INSERT INTO db_tx VALUES (4)");
      co_await tx.commit();
    }
    auto rows = co_await db.query("SELECT v FROM db_tx ORDER BY v");

    SLUICE_CO_ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].get<int>(0), 3);
    EXPECT_EQ(rows[1].get<int>(0), 4);
    EXPECT_EQ(db.stats().cleanups, 1u) << "the dropped transaction was rolled back on return";
  });
}

TEST(Postgres, ExecuteInTransactionCommitsAllOrNothing) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), url, pg_options("sluice-batch"));
    co_await db.execute("DROP TABLE IF EXISTS db_batch");
    co_await check_execute_in_transaction(db, "db_batch");
  });
}

asio::awaitable<void> sleepy_query(Database* db) { co_await db->query("SELECT pg_sleep(0.02)"); }

TEST(Postgres, PoolLimitsServerConnections) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = pg_options("sluice-limits");
    options.pool.pool_size = 2;
    options.pool.max_overflow = 1;
    Database db(ioc.get_executor(), url, options);
    Database observer(ioc.get_executor(), url, pg_options("sluice-observer"));
    WaitGroup group(ioc.get_executor());
    int failures = 0;
    for (int i = 0; i < 20; ++i) {
      group.add();
      asio::co_spawn(ioc.get_executor(), sleepy_query(&db), [&](std::exception_ptr e) {
        failures += e ? 1 : 0;
        group.done();
      });
    }
    co_await yield_once();
    std::int64_t peak = 0;
    while (group.count() > 0) {
      const auto now_open = co_await count_connections(observer, "sluice-limits");
      peak = std::max(peak, now_open);
      co_await sleep_for(5ms);
    }
    co_await group.wait();
    const auto after = co_await settled_connections(observer, "sluice-limits", 2);

    EXPECT_EQ(failures, 0);
    EXPECT_LE(peak, 3);
    EXPECT_EQ(db.stats().open, 2u) << "the overflow connection closed on return";
    EXPECT_EQ(after, 2);
  });
}

asio::awaitable<void> long_query(Database* db) { co_await db->query("SELECT pg_sleep(30)"); }

TEST(Postgres, CancelledQueryIsCancelledOnServer) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  runtime::BlockingPool blocking(1);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = pg_options("sluice-cancel", &blocking);
    options.pool.pool_size = 1;
    options.pool.max_overflow = 0;
    Database db(ioc.get_executor(), url, options);
    asio::cancellation_signal signal;
    WaitGroup group(ioc.get_executor());
    group.add();
    asio::co_spawn(ioc.get_executor(), long_query(&db),
                   asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr) { group.done(); }));
    co_await sleep_for(200ms);
    signal.emit(asio::cancellation_type::terminal);
    co_await group.wait();
    const auto start = Clock::now();
    auto rows = co_await db.query("SELECT 42");

    EXPECT_EQ(rows.at(0).get<int>(0), 42);
    EXPECT_LT(Clock::now() - start, 5s) << "the server-side sleep was cancelled, not waited out";
    EXPECT_EQ(db.stats().cleanups, 1u);
    EXPECT_EQ(db.stats().connects, 1u) << "the cancelled connection was drained and reused";
  });
}

TEST(Postgres, PrePingReplacesTerminatedConnections) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = pg_options("sluice-preping");
    options.pool.pool_size = 3;
    options.pool.max_overflow = 0;
    options.pool.pool_pre_ping = true;
    Database db(ioc.get_executor(), url, options);
    Database admin(ioc.get_executor(), url, pg_options("sluice-admin"));
    {
      auto a = co_await db.acquire();
      auto b = co_await db.acquire();
      auto c = co_await db.acquire();
      co_await a->query("SELECT 1");
      co_await b->query("SELECT 1");
      co_await c->query("SELECT 1");
    }
    co_await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sluice-preping'");
    co_await settled_connections(admin, "sluice-preping", 0);
    auto rows = co_await db.query("SELECT 7");
    const auto stats = db.stats();

    EXPECT_EQ(rows.at(0).get<int>(0), 7);
    EXPECT_EQ(stats.ping_failures, 1u);
    EXPECT_EQ(stats.open, 1u) << "the other idle connections were invalidated with the first";
  });
}

TEST(Postgres, BadHostFailsFastWithRedactedUrl) {
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = pg_options("sluice-badhost");
    options.pool.pool_timeout = 20s;
    // Port 1 on loopback: connection refused at once.
    Database db(ioc.get_executor(), "postgresql://bot:hunter2@127.0.0.1:1/x", options);
    std::string message;
    const auto start = Clock::now();
    try {
      co_await db.query("SELECT 1");
    } catch (const ConnectError& e) {
      message = e.what();
    }

    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_NE(message.find("127.0.0.1"), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  });
}

TEST(Postgres, MigrationLeavesNoConnection) {
  SLUICE_REQUIRE_POSTGRES(url);
  const auto folder = std::filesystem::temp_directory_path() / ("sluice-pg-migrate-" + std::to_string(::getpid()));
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "0001_accounts.sql") << "DROP TABLE IF EXISTS db_accounts;\n"
                                                 "CREATE TABLE db_accounts (id bigint PRIMARY KEY, name text);";
  std::ofstream(folder / "0002_seed.sql") << "INSERT INTO db_accounts VALUES (1, 'a'), (2, 'b');";
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database admin(ioc.get_executor(), url, pg_options("sluice-admin"));
    co_await admin.execute("DROP TABLE IF EXISTS schema_migrations");
    auto report = co_await migrate(ioc.get_executor(), url, folder);
    auto again = co_await migrate(ioc.get_executor(), url, folder);
    const auto left = co_await settled_connections(admin, "sluice-migrate", 0);
    auto rows = co_await admin.query("SELECT count(*) FROM db_accounts");

    EXPECT_EQ(report.applied.size(), 2u);
    EXPECT_EQ(again.applied.size(), 0u);
    EXPECT_EQ(left, 0);
    EXPECT_EQ(rows.at(0).get<int>(0), 2);
  });
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace sluice::db::testing
