#include <sluice/db/connection.hpp>

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

}  // namespace sluice::db
