#include <sluice/db/connection.hpp>

#include <exception>

namespace sluice::db {

boost::asio::awaitable<Transaction> Connection::begin() {
  if (transaction_open_ && !rollback_pending_) {
    throw DbError("cannot begin a transaction: one is already open on this connection");
  }
  co_await run_count(std::string(begin_statement()), {});
  transaction_open_ = true;
  co_return Transaction(*this);
}

boost::asio::awaitable<void> Transaction::commit() {
  Connection* conn = std::exchange(conn_, nullptr);
  if (conn == nullptr) {
    throw DbError("cannot commit: the transaction is already finished");
  }
  conn->transaction_open_ = false;
  co_await conn->run_count("COMMIT", {});
}

boost::asio::awaitable<void> Transaction::rollback() {
  Connection* conn = std::exchange(conn_, nullptr);
  if (conn == nullptr) {
    throw DbError("cannot roll back: the transaction is already finished");
  }
  conn->transaction_open_ = false;
  co_await conn->run_count("ROLLBACK", {});
}

boost::asio::awaitable<std::vector<std::uint64_t>> Connection::execute_in_transaction(
    std::vector<Statement> statements) {
  if (transaction_open_ && !rollback_pending_) {
    throw DbError("cannot run statements in a new transaction: one is already open on this connection");
  }
  co_return co_await run_in_transaction(std::move(statements));
}

boost::asio::awaitable<std::vector<std::uint64_t>> Connection::run_in_transaction(std::vector<Statement> statements) {
  Transaction transaction = co_await begin();
  std::vector<std::uint64_t> counts;
  counts.reserve(statements.size());
  std::exception_ptr failure;
  try {
    for (Statement& statement : statements) {
      counts.push_back(co_await run_count(std::move(statement.sql), std::move(statement.params)));
    }
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    try {
      co_await transaction.rollback();
    } catch (...) {
      // The caller gets the statement's error, which explains more. The pool
      // rolls back or drops the connection when it is returned.
    }
    std::rethrow_exception(failure);
  }
  co_await transaction.commit();
  co_return counts;
}

}  // namespace sluice::db
