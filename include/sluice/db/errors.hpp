#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::db {

/// Base of every error the db module throws.
class DbError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A database URL that cannot be parsed or names an unsupported scheme or
/// option. The message names the offending part; the password never appears.
class UrlError : public DbError {
 public:
  using DbError::DbError;
};

/// Base of the errors a pool raises instead of handing out a connection.
class PoolError : public DbError {
 public:
  using DbError::DbError;
};

/// acquire() waited `pool_timeout` (or until the caller's deadline) and no
/// connection became free. The message names the pool and its counters.
class PoolTimeoutError : public PoolError {
 public:
  using PoolError::PoolError;
};

/// acquire() was rejected at once because `max_waiters` callers already wait.
class PoolExhaustedError : public PoolError {
 public:
  using PoolError::PoolError;
};

/// acquire() on a pool that close() has shut down.
class PoolClosedError : public PoolError {
 public:
  using PoolError::PoolError;
};

/// Opening a connection failed (refused, timed out, authentication). Raised
/// by acquire() without waiting while the pool's connect attempts keep
/// failing; the message is the last connect error.
class ConnectError : public DbError {
 public:
  using DbError::DbError;
};

/// The connection failed while a statement ran: the peer closed it, the
/// socket failed, or the query deadline passed. The connection is discarded.
class ConnectionLostError : public DbError {
 public:
  using DbError::DbError;
};

/// The query deadline (`query_timeout`) passed before the server responded.
class QueryTimeoutError : public ConnectionLostError {
 public:
  using ConnectionLostError::ConnectionLostError;
};

/// The server rejected a statement. `sqlstate()` is PostgreSQL's five-character
/// SQLSTATE ("23505"); for SQLite it is empty and `sqlite_code()` contains the
/// extended result code (2067 = SQLITE_CONSTRAINT_UNIQUE).
class SqlError : public DbError {
 public:
  SqlError(const std::string& message, std::string sqlstate, int sqlite_code = 0)
      : DbError(message), sqlstate_(std::move(sqlstate)), sqlite_code_(sqlite_code) {}

  const std::string& sqlstate() const noexcept { return sqlstate_; }
  int sqlite_code() const noexcept { return sqlite_code_; }

  /// True for SQLSTATE class 08 (connection exception) and 57P01..57P03
  /// (server shutting down or starting): the connection is no longer usable.
  bool is_disconnect() const noexcept;

 private:
  std::string sqlstate_;
  int sqlite_code_;
};

/// A value read from a row could not be converted to the requested type, or
/// the column does not exist.
class ResultError : public DbError {
 public:
  using DbError::DbError;
};

/// Returns true if `sqlstate` means the connection is gone: class 08, or
/// 57P01 (admin shutdown), 57P02 (crash shutdown), 57P03 (cannot connect now).
bool is_disconnect_sqlstate(std::string_view sqlstate) noexcept;

}  // namespace sluice::db
