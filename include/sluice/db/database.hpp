#pragma once

#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <sluice/db/connection.hpp>
#include <sluice/db/pool.hpp>
#include <sluice/db/postgres.hpp>
#include <sluice/db/sqlite.hpp>
#include <sluice/db/url.hpp>

namespace sluice::db {

/// Whether a checkout may write. PostgreSQL ignores it; SQLite routes
/// read_only checkouts to its reader connections and read_write ones to its
/// single writer.
enum class Access { read_write, read_only };

struct DatabaseOptions {
  /// The pool (PostgreSQL), or the SQLite reader pool, whose pool_size is
  /// then SqliteOptions::readers. The SQLite writer pool always has one
  /// connection and waits at least busy_timeout + 1 s.
  PoolOptions pool;
  PgOptions postgres;
  SqliteOptions sqlite;
};

/// A database chosen by URL (postgresql:// or sqlite://) behind one query
/// API, with its pools.
///
///   sluice::db::Database db(executor, "sqlite:///bot.db",
///                           {.sqlite = {.blocking_pool = &blocking}});
///   co_await db.execute("INSERT INTO users (id, name) VALUES ($1, $2)", id, name);
///   auto rows = co_await db.query("SELECT name FROM users WHERE id = $1", id);
///   auto name = rows.at(0).get<std::string>("name");
///
/// Thread safety and lifetimes are those of Pool: one executor; destroy it
/// before its io_context; `co_await close()` for an orderly shutdown.
class Database {
 public:
  /// Errors: UrlError for a malformed URL or option, DbError for a missing
  /// blocking pool (SQLite). No connection is opened here.
  Database(boost::asio::any_io_executor executor, std::string_view url, DatabaseOptions options = {});
  ~Database();
  Database(Database&&) noexcept;
  Database& operator=(Database&&) = delete;

  Backend backend() const noexcept;
  /// The URL with its password replaced (for logs).
  const std::string& url() const noexcept;

  /// Checks out a connection; see Pool::acquire() for waiting, errors and
  /// cancellation. Do not hold it across anything but database calls.
  boost::asio::awaitable<ConnectionHandle> acquire(
      Access access = Access::read_write, std::optional<Clock::time_point> deadline = std::nullopt,
      std::source_location site = std::source_location::current());

  /// Runs one statement on a connection checked out for the call: on a
  /// SQLite reader if the statement starts with SELECT, else on the writer.
  template <class... Args>
  boost::asio::awaitable<ResultSet> query(std::string sql, Args... args) {
    auto conn = co_await acquire(starts_with_select(sql) ? Access::read_only : Access::read_write);
    co_return co_await conn->query(sql, args...);
  }

  /// Runs one statement on a connection that may write; returns the number
  /// of rows changed.
  template <class... Args>
  boost::asio::awaitable<std::uint64_t> execute(std::string sql, Args... args) {
    auto conn = co_await acquire(Access::read_write);
    co_return co_await conn->execute(sql, args...);
  }

  /// Closes every pool and waits for their background work.
  boost::asio::awaitable<void> close();

  /// Pool counters: the PostgreSQL pool, or the SQLite writer (read_write)
  /// or reader (read_only) pool.
  PoolStats stats(Access access = Access::read_write) const;

  /// The pools, for tests and metrics (nullptr when the backend differs).
  Pool<PgDriver>* postgres_pool() noexcept;
  Pool<SqliteDriver>* sqlite_pool(Access access) noexcept;

  static bool starts_with_select(std::string_view sql) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::db
