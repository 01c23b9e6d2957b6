// Throughput of sluice::db against real databases, for bench/db/run.sh.
//
//   sluice_db_load postgres URL SECONDS CLIENTS ROWS
//     CLIENTS coroutines run `SELECT abalance FROM pgbench_accounts WHERE
//     aid = $1` (prepared) with random aid in [1, ROWS] through one pool of
//     CLIENTS connections; prints "queries_per_second=N".
//   sluice_db_load sqlite PATH SECONDS CLIENTS
//     CLIENTS coroutines read (point SELECT) for SECONDS, then write (one
//     INSERT per transaction) for SECONDS; prints both rates.

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sluice/db/database.hpp>
#include <sluice/runtime/blocking_pool.hpp>

namespace {

namespace asio = boost::asio;
using sluice::db::Clock;

struct Counters {
  std::uint64_t done = 0;
  std::uint64_t errors = 0;
  std::string last_error;
};

asio::awaitable<void> pg_client(sluice::db::Database* db, Clock::time_point stop, std::int64_t rows, unsigned seed,
                                Counters* counters) {
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::int64_t> aid(1, rows);
  while (Clock::now() < stop) {
    try {
      auto conn = co_await db->acquire();
      auto result = co_await conn->query("SELECT abalance FROM pgbench_accounts WHERE aid = $1", aid(random));
      ++counters->done;
    } catch (const std::exception& e) {
      ++counters->errors;
      counters->last_error = e.what();
    }
  }
}

asio::awaitable<void> sqlite_reader(sluice::db::Database* db, Clock::time_point stop, unsigned seed,
                                    Counters* counters) {
  std::mt19937 random(seed);
  while (Clock::now() < stop) {
    try {
      auto rows = co_await db->query("SELECT v FROM kv WHERE k = $1", static_cast<int>(random() % 1000));
      ++counters->done;
    } catch (const std::exception& e) {
      ++counters->errors;
      counters->last_error = e.what();
    }
  }
}

asio::awaitable<void> sqlite_writer(sluice::db::Database* db, Clock::time_point stop, unsigned seed,
                                    Counters* counters) {
  std::mt19937 random(seed);
  while (Clock::now() < stop) {
    try {
      co_await db->execute("INSERT INTO log (k, v) VALUES ($1, $2)", static_cast<int>(random() % 1000), "payload");
      ++counters->done;
    } catch (const std::exception& e) {
      ++counters->errors;
      counters->last_error = e.what();
    }
  }
}

void report(const char* name, const Counters& counters, double seconds) {
  std::cout << name << "=" << static_cast<std::uint64_t>(static_cast<double>(counters.done) / seconds)
            << " errors=" << counters.errors;
  if (counters.errors > 0) {
    std::cout << " last_error=\"" << counters.last_error << "\"";
  }
  std::cout << "\n";
}

asio::awaitable<void> run_postgres(asio::io_context* ioc, std::string url, int seconds, int clients,
                                   std::int64_t rows) {
  sluice::db::DatabaseOptions options;
  options.pool.pool_size = static_cast<std::size_t>(clients);
  options.pool.max_overflow = 0;
  options.pool.hold_warning_threshold = std::chrono::milliseconds{0};
  options.pool.connecting_limit = 0;
  options.postgres.application_name = "sluice-bench";
  sluice::db::Database db(ioc->get_executor(), url, options);
  {
    // Open every connection first, as pgbench does before its clock starts.
    std::vector<sluice::db::ConnectionHandle> warm;
    for (int i = 0; i < clients; ++i) {
      auto conn = co_await db.acquire();
      co_await conn->query("SELECT abalance FROM pgbench_accounts WHERE aid = $1", std::int64_t{1});
      warm.push_back(std::move(conn));
    }
  }

  Counters counters;
  const auto start = Clock::now();
  const auto stop = start + std::chrono::seconds{seconds};
  std::size_t running = static_cast<std::size_t>(clients);
  asio::steady_timer done(ioc->get_executor(), Clock::time_point::max());
  for (int i = 0; i < clients; ++i) {
    asio::co_spawn(ioc->get_executor(), pg_client(&db, stop, rows, 1000 + static_cast<unsigned>(i), &counters),
                   [&](std::exception_ptr) {
                     if (--running == 0) {
                       done.cancel();
                     }
                   });
  }
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  co_await done.async_wait(token);
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  report("queries_per_second", counters, elapsed);
  co_await db.close();
}

asio::awaitable<void> run_sqlite(asio::io_context* ioc, sluice::runtime::BlockingPool* blocking, std::string path,
                                 int seconds, int clients) {
  sluice::db::DatabaseOptions options;
  options.sqlite.blocking_pool = blocking;
  options.sqlite.readers = blocking->thread_count() - 1;
  options.pool.hold_warning_threshold = std::chrono::milliseconds{0};
  sluice::db::Database db(ioc->get_executor(), "sqlite:///" + path, options);
  co_await db.execute("CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v TEXT)");
  co_await db.execute("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, k INTEGER, v TEXT)");
  co_await db.execute(
      "WITH RECURSIVE s(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM s WHERE x < 999) "
      "INSERT OR IGNORE INTO kv SELECT x, 'value' FROM s");

  for (int phase = 0; phase < 2; ++phase) {
    Counters counters;
    const auto start = Clock::now();
    const auto stop = start + std::chrono::seconds{seconds};
    std::size_t running = static_cast<std::size_t>(clients);
    asio::steady_timer done(ioc->get_executor(), Clock::time_point::max());
    for (int i = 0; i < clients; ++i) {
      auto task = phase == 0 ? sqlite_reader(&db, stop, static_cast<unsigned>(i), &counters)
                             : sqlite_writer(&db, stop, static_cast<unsigned>(i), &counters);
      asio::co_spawn(ioc->get_executor(), std::move(task), [&](std::exception_ptr) {
        if (--running == 0) {
          done.cancel();
        }
      });
    }
    boost::system::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    co_await done.async_wait(token);
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    report(phase == 0 ? "sqlite_reads_per_second" : "sqlite_writes_per_second", counters, elapsed);
  }
  co_await db.close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: sluice_db_load postgres URL SECONDS CLIENTS ROWS | sqlite PATH SECONDS CLIENTS\n";
    return 2;
  }
  const std::string mode = argv[1];
  asio::io_context ioc;
  sluice::runtime::BlockingPool blocking(3, "db-load");
  int status = 0;
  auto on_done = [&](std::exception_ptr error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        std::cerr << "sluice_db_load: " << e.what() << "\n";
      }
      status = 1;
    }
  };
  if (mode == "postgres" && argc == 6) {
    asio::co_spawn(ioc, run_postgres(&ioc, argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::atoll(argv[5])),
                   on_done);
  } else if (mode == "sqlite") {
    asio::co_spawn(ioc, run_sqlite(&ioc, &blocking, argv[2], std::atoi(argv[3]), std::atoi(argv[4])), on_done);
  } else {
    std::cerr << "sluice_db_load: unknown mode or wrong argument count\n";
    return 2;
  }
  ioc.run();
  blocking.join();
  return status;
}
