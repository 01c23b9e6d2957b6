#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>

#include <sluice/db/connection.hpp>
#include <sluice/db/pool.hpp>
#include <sluice/db/url.hpp>

struct sqlite3;
struct sqlite3_stmt;

namespace sluice::runtime {
class BlockingPool;
}

namespace sluice::db {

/// Settings of the SQLite driver. Each can also be set by a URL query
/// parameter of the same name (durations in milliseconds).
struct SqliteOptions {
  /// Thread pool every SQLite call runs on (SQLite blocks). Required; must
  /// outlive the driver. Give it at least readers + 2 threads so the writer
  /// always finds one and WAL checkpoints run beside it.
  runtime::BlockingPool* blocking_pool = nullptr;

  /// How long a statement waits for another connection's lock (another
  /// process, or a reader's checkpoint) before SQLITE_BUSY. Default 5 s.
  std::chrono::milliseconds busy_timeout{5'000};

  /// Reader connections (the writer is always one). Default 4. ":memory:"
  /// databases use the writer for everything.
  std::size_t readers = 4;

  /// Prepared statements kept per connection. Default 64.
  std::size_t statement_cache_size = 64;

  /// PRAGMA synchronous; NORMAL is safe with WAL (a power loss may drop the
  /// last transactions, never corrupt). Default "NORMAL".
  std::string synchronous = "NORMAL";
};

class WalCheckpointer;

/// A SQLite connection; every SQLite call runs through offload() on the
/// blocking pool. One statement at a time.
///
/// WAL checkpoints stay out of the writer's commits where they can. SQLite's
/// automatic checkpoint runs in the commit that brings the WAL to 1,000
/// pages, with two fsyncs. Here a connection of its own copies those pages
/// into the database file as a job on the blocking pool, beside the
/// writer's next statements. The writer checkpoints in its commit only when
/// the pool is closed, or when it never pauses long enough for a job to
/// complete: at 4,000 pages it waits for a running job and checkpoints.
class SqliteConnection final : public Connection {
 public:
  SqliteConnection(runtime::BlockingPool& pool, const SqliteOptions& options, bool writer);
  ~SqliteConnection() override;

  Backend backend() const noexcept override { return Backend::sqlite; }
  bool writer() const noexcept { return writer_; }

  // --- used by SqliteDriver (blocking; call on the blocking pool) ----------
  void open_blocking(const std::string& path);
  void close_blocking() noexcept;

  boost::asio::awaitable<void> reset(ResetOnReturn mode);
  ReturnState return_state() const noexcept;

 protected:
  boost::asio::awaitable<ResultSet> run(std::string sql, Params params, bool want_rows) override;
  boost::asio::awaitable<std::uint64_t> run_count(std::string sql, Params params) override;
  boost::asio::awaitable<void> run_script(std::string sql) override;
  boost::asio::awaitable<std::vector<std::uint64_t>> run_in_transaction(std::vector<Statement> statements) override;
  std::string_view begin_statement() const noexcept override { return writer_ ? "BEGIN IMMEDIATE" : "BEGIN"; }

 private:
  struct Cached {
    sqlite3_stmt* statement;
    std::list<std::string>::iterator lru;
  };

  boost::asio::awaitable<void> before_statement();
  ResultSet step_blocking(const std::string& sql, const Params& params);
  sqlite3_stmt* prepare_blocking(const std::string& sql);
  void exec_blocking(const char* sql);
  [[noreturn]] void throw_error(int code, std::string_view sql) const;

  runtime::BlockingPool& pool_;
  SqliteOptions options_;
  bool writer_;
  sqlite3* db_ = nullptr;
  bool in_flight_ = false;
  bool broken_ = false;
  std::unordered_map<std::string, Cached> statements_;
  std::list<std::string> statement_lru_;
  // The writer's checkpointer for a database file, shared with a running
  // checkpoint job.
  std::shared_ptr<WalCheckpointer> checkpointer_;
};

/// The SQLite driver of Pool<SqliteDriver>. Connections are never pinged
/// (an embedded database cannot go away). The writer opens the file in WAL
/// mode; readers set PRAGMA query_only.
class SqliteDriver {
 public:
  using Connection = SqliteConnection;
  static constexpr bool kPings = false;

  SqliteDriver(DatabaseUrl url, SqliteOptions options, bool writer);

  boost::asio::awaitable<std::unique_ptr<SqliteConnection>> connect(Clock::time_point deadline);
  boost::asio::awaitable<void> ping(SqliteConnection&, Clock::time_point) { co_return; }
  boost::asio::awaitable<void> reset(SqliteConnection& conn, ResetOnReturn mode, Clock::time_point) {
    return conn.reset(mode);
  }
  ReturnState return_state(const SqliteConnection& conn) const noexcept { return conn.return_state(); }
  /// Closes on the loop thread: finalizing statements and sqlite3_close are
  /// quick, except the WAL checkpoint when the last connection of a file
  /// closes.
  void close(std::unique_ptr<SqliteConnection> conn) noexcept;

  const SqliteOptions& options() const noexcept { return options_; }

 private:
  DatabaseUrl url_;
  SqliteOptions options_;
  bool writer_;
};

/// Reads SqliteOptions fields from `url` query parameters (busy_timeout,
/// readers, statement_cache_size, synchronous), removing them, on top of
/// `defaults`. Errors: UrlError for an unknown parameter or a bad value.
SqliteOptions sqlite_options_from_url(DatabaseUrl& url, SqliteOptions defaults);

}  // namespace sluice::db
