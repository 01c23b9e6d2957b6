#pragma once

#include <cstdint>
#include <source_location>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <sluice/db/param.hpp>
#include <sluice/db/pool.hpp>
#include <sluice/db/result.hpp>

namespace sluice::db {

class Transaction;

/// A statement and its arguments, for Connection::execute_in_transaction().
struct Statement {
  template <class... Args>
  explicit Statement(std::string text, const Args&... args) : sql(std::move(text)), params(make_params(args...)) {}

  std::string sql;
  Params params;
};

/// The database product behind a connection.
enum class Backend { postgresql, sqlite };

/// The query API shared by the PostgreSQL and SQLite connections.
///
/// Placeholders are `$1`, `$2`, ... for both backends (SQLite reads `$1` as
/// a named parameter; the driver binds it by its number). Arguments are
/// bound, never formatted into the SQL text; see to_param() for the types.
///
/// Every call runs on the connection's pool executor. Statements on one
/// connection run one at a time: do not start a second call before the
/// first has finished. Cancellation: cancelling the awaiting coroutine
/// stops the wait. A statement already sent stays in flight, and the pool
/// cancels and drains it when the connection is returned.
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  virtual ~Connection() = default;

  /// Runs one statement and returns its rows.
  /// Errors: SqlError (SQLSTATE or SQLite result code), ConnectionLostError,
  /// QueryTimeoutError.
  template <class... Args>
  boost::asio::awaitable<ResultSet> query(std::string_view sql, const Args&... args) {
    return run(std::string(sql), make_params(args...), true);
  }

  /// Runs one statement and returns the number of rows it changed.
  template <class... Args>
  boost::asio::awaitable<std::uint64_t> execute(std::string_view sql, const Args&... args) {
    return run_count(std::string(sql), make_params(args...));
  }

  /// Runs several statements separated by semicolons, without parameters
  /// (migrations, schema set-up).
  boost::asio::awaitable<void> execute_script(std::string_view sql) { return run_script(std::string(sql)); }

  /// Starts a transaction (SQLite: BEGIN IMMEDIATE on a writer connection,
  /// so that the write lock is taken up front and the busy timeout applies).
  /// The returned Transaction rolls back unless commit() succeeds; it must
  /// not outlive this connection's handle.
  boost::asio::awaitable<Transaction> begin();

  /// Runs `statements` in order in one transaction and returns the number
  /// of rows each one changed. Commits when all succeed, and otherwise rolls
  /// back and rethrows the first error. SQLite runs the whole transaction
  /// as one job on the blocking pool, where begin(), execute() and commit()
  /// take one each. Throws DbError inside a transaction begun with begin().
  boost::asio::awaitable<std::vector<std::uint64_t>> execute_in_transaction(std::vector<Statement> statements);

  virtual Backend backend() const noexcept = 0;

 protected:
  friend class Transaction;

  /// The default sends begin(), each statement and commit() one by one.
  virtual boost::asio::awaitable<std::vector<std::uint64_t>> run_in_transaction(std::vector<Statement> statements);

  virtual boost::asio::awaitable<ResultSet> run(std::string sql, Params params, bool want_rows) = 0;
  virtual boost::asio::awaitable<std::uint64_t> run_count(std::string sql, Params params) = 0;
  virtual boost::asio::awaitable<void> run_script(std::string sql) = 0;
  virtual std::string_view begin_statement() const noexcept { return "BEGIN"; }

  /// Set when a Transaction is dropped without commit or rollback; drivers
  /// roll back before the next statement, and the pool on return.
  bool rollback_pending_ = false;
  bool transaction_open_ = false;
};

/// A transaction on one connection: rolled back unless commit() is called.
/// Move-only. A destructor cannot await, so destroying it without commit()
/// or rollback() only marks the connection. The ROLLBACK then runs before
/// the connection's next statement or when it returns to the pool.
class Transaction {
 public:
  explicit Transaction(Connection& conn) noexcept : conn_(&conn) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction(Transaction&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    if (conn_ != nullptr) {
      conn_->rollback_pending_ = true;
    }
  }

  /// Commits. Errors: SqlError (for example a serialization failure, after
  /// which the transaction is over), ConnectionLostError.
  boost::asio::awaitable<void> commit();
  boost::asio::awaitable<void> rollback();

 private:
  Connection* conn_;
};

/// A connection checked out of a Database: a PooledConnection of either
/// driver behind the common Connection API. Move-only RAII, with the same
/// return semantics as PooledConnection.
class ConnectionHandle {
 public:
  ConnectionHandle() noexcept = default;

  template <class Driver>
    requires std::derived_from<typename Driver::Connection, Connection>
  ConnectionHandle(PooledConnection<Driver>&& pooled) noexcept : conn_(pooled.get()) {  // NOLINT: implicit by design
    auto parts = pooled.release_to_erased();
    core_ = parts.first;
    entry_ = parts.second;
  }

  ConnectionHandle(const ConnectionHandle&) = delete;
  ConnectionHandle& operator=(const ConnectionHandle&) = delete;
  ConnectionHandle(ConnectionHandle&& other) noexcept
      : core_(std::exchange(other.core_, nullptr)),
        entry_(std::exchange(other.entry_, nullptr)),
        conn_(std::exchange(other.conn_, nullptr)) {}
  ConnectionHandle& operator=(ConnectionHandle&& other) noexcept {
    if (this != &other) {
      reset();
      core_ = std::exchange(other.core_, nullptr);
      entry_ = std::exchange(other.entry_, nullptr);
      conn_ = std::exchange(other.conn_, nullptr);
    }
    return *this;
  }
  ~ConnectionHandle() { reset(); }

  Connection* get() const noexcept { return conn_; }
  Connection* operator->() const noexcept { return conn_; }
  Connection& operator*() const noexcept { return *conn_; }
  explicit operator bool() const noexcept { return conn_ != nullptr; }

  /// Marks the connection unusable: it is closed instead of reused.
  void invalidate() noexcept {
    if (entry_ != nullptr) {
      entry_->invalidated_by_holder = true;
    }
  }

  /// Returns the connection to its pool now.
  void reset() noexcept {
    if (entry_ == nullptr) {
      return;
    }
    conn_ = nullptr;
    auto* core = std::exchange(core_, nullptr);
    core->return_entry(std::exchange(entry_, nullptr));
    core->release_ref();
  }

 private:
  detail::PoolCoreBase* core_ = nullptr;
  detail::EntryBase* entry_ = nullptr;
  Connection* conn_ = nullptr;
};

}  // namespace sluice::db
