#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sluice/db/connection.hpp>
#include <sluice/db/pool.hpp>
#include <sluice/db/url.hpp>

struct pg_conn;

namespace sluice::runtime {
class BlockingPool;
}

namespace sluice::db {

/// Settings of the PostgreSQL driver. Each can also be set by a query
/// parameter of the same name in the URL (durations in milliseconds,
/// booleans as true/false/on/off/1/0).
struct PgOptions {
  /// Client-side deadline of one statement, from sending it to its last
  /// result; past it the connection is closed and QueryTimeoutError raised.
  /// It is what notices a server that stopped responding while TCP still
  /// works (a hung or SIGSTOPped server). Default 30 s; 0 = none.
  std::chrono::milliseconds query_timeout{30'000};

  /// Keep prepared statements per connection (PQsendPrepare once, then
  /// PQsendQueryPrepared). Turn off behind pgbouncer in transaction mode,
  /// where the next statement may run on another server connection.
  /// Default on.
  bool statement_cache = true;

  /// Prepared statements kept per connection; the least recently used one
  /// is deallocated past this. Default 100 (asyncpg's default).
  std::size_t statement_cache_size = 100;

  /// TCP keepalive (libpq keepalives_idle / _interval / _count) and
  /// tcp_user_timeout, so that a peer that vanished (host down, network
  /// cut) is noticed within about idle + interval x count, and unacknowledged
  /// writes fail after tcp_user_timeout. Defaults 30 s, 10 s, 3, 30 s.
  std::chrono::seconds keepalives_idle{30};
  std::chrono::seconds keepalives_interval{10};
  int keepalives_count = 3;
  std::chrono::milliseconds tcp_user_timeout{30'000};

  /// Shown in pg_stat_activity. Default "sluice".
  std::string application_name = "sluice";

  /// Thread pool for PQcancel, which blocks in libpq 15. Without one, a
  /// connection returned with a statement in flight is closed instead of
  /// cancelled and reused. Must outlive the driver.
  runtime::BlockingPool* blocking_pool = nullptr;
};

/// A PostgreSQL connection: libpq in non-blocking mode, its socket watched
/// by the event loop. Not thread-safe: use it from the pool's executor.
class PgConnection final : public Connection {
 public:
  PgConnection(boost::asio::any_io_executor executor, const PgOptions& options);
  ~PgConnection() override;

  Backend backend() const noexcept override { return Backend::postgresql; }

  /// The server process id serving this connection (pg_backend_pid()).
  int backend_pid() const noexcept;

  // --- used by PgDriver ------------------------------------------------------

  boost::asio::awaitable<void> connect(std::vector<std::string> keys, std::vector<std::string> values,
                                       Clock::time_point deadline);
  boost::asio::awaitable<void> ping(Clock::time_point deadline);
  boost::asio::awaitable<void> reset(ResetOnReturn mode, Clock::time_point deadline);
  ReturnState return_state() const noexcept;
  void close() noexcept;

 protected:
  boost::asio::awaitable<ResultSet> run(std::string sql, Params params, bool want_rows) override;
  boost::asio::awaitable<std::uint64_t> run_count(std::string sql, Params params) override;
  boost::asio::awaitable<void> run_script(std::string sql) override;

 private:
  enum class Health { ok, broken, lost };
  struct Prepared {
    std::string name;
    std::list<std::string>::iterator lru;
  };
  struct Results;

  boost::asio::awaitable<void> wait(bool for_write, Clock::time_point deadline);
  boost::asio::awaitable<void> flush(Clock::time_point deadline);
  boost::asio::awaitable<Results> read_results(Clock::time_point deadline);
  boost::asio::awaitable<Results> execute(const std::string& sql, const Params& params, Clock::time_point deadline);
  boost::asio::awaitable<void> simple(const char* sql, Clock::time_point deadline);
  boost::asio::awaitable<void> before_statement(Clock::time_point deadline);
  boost::asio::awaitable<const std::string*> prepare(const std::string& sql, std::size_t param_count,
                                                     Clock::time_point deadline);
  Clock::time_point statement_deadline() const;
  void refresh_socket();
  [[noreturn]] void fail_lost(const std::string& what);

  boost::asio::any_io_executor executor_;
  PgOptions options_;
  pg_conn* conn_ = nullptr;
  int socket_fd_ = -1;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer timer_;
  Health health_ = Health::ok;
  bool in_flight_ = false;
  std::unordered_map<std::string, Prepared> statements_;
  std::list<std::string> statement_lru_;
  std::uint64_t next_statement_ = 0;
};

/// The PostgreSQL driver of Pool<PgDriver>: connects with libpq's
/// non-blocking API after resolving the host name with Asio (libpq's own
/// resolution would block the loop).
class PgDriver {
 public:
  using Connection = PgConnection;
  static constexpr bool kPings = true;

  /// `url` must be a postgresql:// URL; its query parameters are libpq
  /// keywords except those PgOptions reads.
  PgDriver(boost::asio::any_io_executor executor, DatabaseUrl url, PgOptions options = {});

  boost::asio::awaitable<std::unique_ptr<PgConnection>> connect(Clock::time_point deadline);
  boost::asio::awaitable<void> ping(PgConnection& conn, Clock::time_point deadline) { return conn.ping(deadline); }
  boost::asio::awaitable<void> reset(PgConnection& conn, ResetOnReturn mode, Clock::time_point deadline) {
    return conn.reset(mode, deadline);
  }
  ReturnState return_state(const PgConnection& conn) const noexcept { return conn.return_state(); }
  void close(std::unique_ptr<PgConnection> conn) noexcept;

  const PgOptions& options() const noexcept { return options_; }
  const DatabaseUrl& url() const noexcept { return url_; }

 private:
  boost::asio::any_io_executor executor_;
  DatabaseUrl url_;
  PgOptions options_;
};

/// Reads PgOptions fields from `url` query parameters (query_timeout,
/// statement_cache, statement_cache_size, keepalives_idle, ...), removing
/// them from the URL, on top of `defaults`. Errors: UrlError.
PgOptions pg_options_from_url(DatabaseUrl& url, PgOptions defaults);

}  // namespace sluice::db
