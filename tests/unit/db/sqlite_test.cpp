#include <sluice/db/database.hpp>

#include <filesystem>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include <sluice/runtime/blocking_pool.hpp>

#include "unit/db/coro_test_support.hpp"
#include "unit/db/transaction_checks.hpp"

namespace sluice::db::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A fresh directory under the system temp dir, removed afterwards.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / ("sluice-db-" + std::to_string(::getpid()) + "-" + name)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string url(const std::string& file) const { return "sqlite:///" + (path_ / file).string(); }

 private:
  std::filesystem::path path_;
};

DatabaseOptions sqlite_options(runtime::BlockingPool& blocking) {
  DatabaseOptions options;
  options.sqlite.blocking_pool = &blocking;
  options.pool.hold_warning_threshold = 0ms;
  return options;
}

TEST(Sqlite, RoundTripsTypes) {
  TempDir dir("types");
  asio::io_context ioc;
  runtime::BlockingPool blocking(3);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), dir.url("types.db"), sqlite_options(blocking));
    co_await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, ok INTEGER, data BLOB)");
    const Blob data{std::byte{0}, std::byte{0xff}, std::byte{7}};
    const std::optional<std::string> no_name;
    const auto inserted = co_await db.execute("INSERT INTO t VALUES ($1, $2, $3, $4, $5), ($6, $7, NULL, NULL, NULL)",
                                              1, "ann", 2.5, true, data, 2, no_name);
    auto rows = co_await db.query("SELECT id, name, score, ok, data FROM t ORDER BY id");

    EXPECT_EQ(inserted, 2u);
    SLUICE_CO_ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].get<std::int64_t>(0), 1);
    EXPECT_EQ(rows[0].get<std::string>("name"), "ann");
    EXPECT_DOUBLE_EQ(rows[0].get<double>("score"), 2.5);
    EXPECT_TRUE(rows[0].get<bool>("ok"));
    EXPECT_EQ(rows[0].get<Blob>("data"), data);
    EXPECT_EQ(rows[1].get<std::optional<std::string>>("name"), std::nullopt);
    EXPECT_THROW(rows[1].get<std::string>("name"), ResultError);
    EXPECT_THROW(rows[0].get<std::int64_t>("missing"), ResultError);
    co_await db.close();
  });
}

TEST(Sqlite, PlaceholdersBindByNumber) {
  asio::io_context ioc;
  runtime::BlockingPool blocking(2);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), "sqlite://:memory:", sqlite_options(blocking));
    auto rows = co_await db.query("SELECT $2 AS b, $1 AS a, $2 AS b2", 10, 20);

    EXPECT_EQ(rows.at(0).get<int>("a"), 10);
    EXPECT_EQ(rows.at(0).get<int>("b"), 20);
    EXPECT_EQ(rows.at(0).get<int>("b2"), 20);
    bool rejected = false;
    try {
      co_await db.query("SELECT :name", 1);
    } catch (const SqlError& e) {
      rejected = std::string(e.what()).find("use $1") != std::string::npos;
    }
    EXPECT_TRUE(rejected);
  });
}

TEST(Sqlite, ErrorsCarryExtendedCode) {
  asio::io_context ioc;
  runtime::BlockingPool blocking(2);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), "sqlite://:memory:", sqlite_options(blocking));
    co_await db.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT UNIQUE)");
    co_await db.execute("INSERT INTO u (name) VALUES ($1)", "x");
    int code = 0;
    std::string message;
    try {
      co_await db.execute("INSERT INTO u (name) VALUES ($1)", "x");
    } catch (const SqlError& e) {
      code = e.sqlite_code();
      message = e.what();
    }

    EXPECT_EQ(code, 2067) << message;  // SQLITE_CONSTRAINT_UNIQUE
    EXPECT_NE(message.find("UNIQUE"), std::string::npos) << message;
  });
}

TEST(Sqlite, TransactionRollsBackUnlessCommitted) {
  asio::io_context ioc;
  runtime::BlockingPool blocking(2);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), "sqlite://:memory:", sqlite_options(blocking));
    co_await db.execute("CREATE TABLE t (v INTEGER)");
    {
      auto conn = co_await db.acquire();
      auto tx = co_await conn->begin();
      co_await conn->execute("INSERT INTO t VALUES (1)");
    }
    {
      auto conn = co_await db.acquire();
      {
        auto tx = co_await conn->begin();
        co_await conn->execute("INSERT INTO t VALUES (2)");
      }
      co_await conn->execute("INSERT INTO t VALUES (3)");
      auto tx = co_await conn->begin();
      co_await conn->execute("INSERT INTO t VALUES (4)");
      co_await tx.commit();
    }
    auto rows = co_await db.query("SELECT v FROM t ORDER BY v");

    SLUICE_CO_ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].get<int>(0), 3);
    EXPECT_EQ(rows[1].get<int>(0), 4);
  });
}

TEST(Sqlite, ExecuteInTransactionCommitsAllOrNothing) {
  TempDir dir("batch");
  asio::io_context ioc;
  runtime::BlockingPool blocking(2);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), dir.url("batch.db"), sqlite_options(blocking));
    co_await check_execute_in_transaction(db, "batch");
  });
}

TEST(Sqlite, ReaderConnectionsRejectWrites) {
  TempDir dir("readers");
  asio::io_context ioc;
  runtime::BlockingPool blocking(3);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), dir.url("r.db"), sqlite_options(blocking));
    co_await db.execute("CREATE TABLE t (v INTEGER)");
    auto reader = co_await db.acquire(Access::read_only);
    bool rejected = false;
    try {
      co_await reader->execute("INSERT INTO t VALUES (1)");
    } catch (const SqlError& e) {
      rejected = e.sqlite_code() == 8;  // SQLITE_READONLY
    }

    EXPECT_TRUE(rejected);
    EXPECT_EQ(db.stats(Access::read_only).open, 1u);
  });
}

asio::awaitable<void> write_rows(Database* db, int writer, int rows, int* locked_errors) {
  for (int i = 0; i < rows; ++i) {
    try {
      auto conn = co_await db->acquire();
      auto tx = co_await conn->begin();
      co_await conn->execute("INSERT INTO t (writer, n) VALUES ($1, $2)", writer, i);
      co_await conn->execute("UPDATE counter SET n = n + 1");
      co_await tx.commit();
    } catch (const SqlError& e) {
      ++*locked_errors;
      ADD_FAILURE() << e.what();
    }
  }
}

// Waits up to 5 s for `done()`, checking every 10 ms.
template <class Done>
asio::awaitable<bool> eventually(Done done) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int i = 0; i < 500 && !done(); ++i) {
    timer.expires_after(10ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return done();
}

std::uintmax_t size_or_zero(const std::filesystem::path& path) {
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  return error ? 0 : size;
}

TEST(Sqlite, CheckpointsRunAsJobsOfTheirOwn) {
  TempDir dir("checkpoint");
  asio::io_context ioc;
  runtime::BlockingPool blocking(3);
  const std::string url = dir.url("c.db");
  const std::filesystem::path file = url.substr(std::string("sqlite:///").size());
  const std::filesystem::path wal = file.string() + "-wal";
  run_on(ioc, [&]() -> asio::awaitable<void> {
    Database db(ioc.get_executor(), url, sqlite_options(blocking));
    co_await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB)");
    // Pool jobs per small INSERT, far below the 1,000 WAL pages that
    // start a checkpoint.
    const std::uint64_t before_small = blocking.completed();
    const Blob small(16, std::byte{1});
    for (int i = 0; i < 10; ++i) {
      co_await db.execute("INSERT INTO t (data) VALUES ($1)", small);
    }
    const std::uint64_t jobs_per_insert = (blocking.completed() - before_small) / 10;

    // 64 commits of 256 KiB, 10 ms apart, write about 4,200 pages: each
    // checkpoint completes in a pause and SQLite starts the WAL over.
    const std::uint64_t before = blocking.completed();
    asio::steady_timer pause(ioc);
    std::uintmax_t largest_wal = 0;
    const Blob large(256 * 1024, std::byte{7});
    for (int i = 0; i < 64; ++i) {
      co_await db.execute("INSERT INTO t (data) VALUES ($1)", large);
      largest_wal = std::max(largest_wal, size_or_zero(wal));
      pause.expires_after(10ms);
      co_await pause.async_wait(asio::use_awaitable);
    }
    EXPECT_GT(blocking.completed() - before, 64 * jobs_per_insert);
    // A WAL frame is a 4 KiB page and a 24-byte header.
    constexpr std::uintmax_t kFrame = 4096 + 24;
    EXPECT_LT(largest_wal, 1'500 * kFrame) << "the WAL grew to " << largest_wal << " bytes";

    // 1,200 commits of 64 KiB without a pause write about 19,800 pages. A
    // checkpoint beside them does not complete, so the writer checkpoints
    // itself at 4,000 pages, once the running job is done.
    largest_wal = 0;
    const Blob medium(64 * 1024, std::byte{8});
    for (int i = 0; i < 1'200; ++i) {
      co_await db.execute("INSERT INTO t (data) VALUES ($1)", medium);
      largest_wal = std::max(largest_wal, size_or_zero(wal));
    }
    EXPECT_LT(largest_wal, 4'100 * kFrame) << "the WAL grew to " << largest_wal << " bytes";
    auto copied = [&] { return size_or_zero(file) >= 80 * 1024 * 1024; };
    EXPECT_TRUE(co_await eventually(copied)) << "database file holds " << size_or_zero(file) << " bytes";
    auto rows = co_await db.query("SELECT count(*) AS n FROM t");
    EXPECT_EQ(rows.at(0).get<int>("n"), 1'274);
    co_await db.close();
    // The last connection to close copies the rest and removes the WAL.
    auto removed = [&] { return !std::filesystem::exists(wal); };
    EXPECT_TRUE(co_await eventually(removed));
  });
}

TEST(Sqlite, ConcurrentWritersNeverSeeLocked) {
  TempDir dir("writers");
  asio::io_context ioc;
  runtime::BlockingPool blocking(6);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    // Two Database objects on one file stand for two processes: their
    // writers contend for SQLite's lock, and busy_timeout resolves it.
    const auto url = dir.url("w.db");
    Database first(ioc.get_executor(), url, sqlite_options(blocking));
    Database second(ioc.get_executor(), url, sqlite_options(blocking));
    co_await first.execute("CREATE TABLE t (writer INTEGER, n INTEGER)");
    co_await first.execute("CREATE TABLE counter (n INTEGER)");
    co_await first.execute("INSERT INTO counter VALUES (0)");

    WaitGroup group(ioc.get_executor());
    int locked_errors = 0;
    constexpr int kWriters = 8;
    constexpr int kRows = 25;
    for (int w = 0; w < kWriters; ++w) {
      group.add();
      Database* db = w % 2 == 0 ? &first : &second;
      asio::co_spawn(ioc.get_executor(), write_rows(db, w, kRows, &locked_errors),
                     [&](std::exception_ptr) { group.done(); });
    }
    co_await group.wait();
    auto count = co_await second.query("SELECT count(*) AS rows FROM t");
    auto counter = co_await first.query("SELECT n FROM counter");

    EXPECT_EQ(locked_errors, 0);
    EXPECT_EQ(count.at(0).get<int>("rows"), kWriters * kRows);
    EXPECT_EQ(counter.at(0).get<int>("n"), kWriters * kRows);
    co_await first.close();
    co_await second.close();
  });
}

}  // namespace
}  // namespace sluice::db::testing
