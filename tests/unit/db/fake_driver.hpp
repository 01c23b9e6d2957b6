#pragma once

// An in-memory database driver for pool tests: a FakeServer that can go
// down, restart (killing every connection opened before) and slow down
// connects, and connections whose statements take real (timer) time and can
// be cancelled mid-flight.

#include <chrono>
#include <memory>
#include <stdexcept>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sluice/db/errors.hpp>
#include <sluice/db/pool.hpp>

namespace sluice::db::testing {

struct FakeServer {
  bool up = true;
  std::uint64_t generation = 0;  // restart() bumps it; older connections are dead
  std::size_t open = 0;
  std::size_t max_open = 0;
  std::size_t connects = 0;
  std::size_t connecting = 0;
  std::size_t max_connecting = 0;
  std::size_t pings = 0;
  std::size_t resets = 0;
  std::size_t next_id = 1;
  std::chrono::milliseconds connect_delay{0};

  void restart() { ++generation; }
};

class FakeConnection {
 public:
  FakeConnection(FakeServer& server, boost::asio::any_io_executor executor)
      : server_(server), executor_(std::move(executor)), id_(server.next_id++), generation_(server.generation) {
    ++server_.open;
    server_.max_open = std::max(server_.max_open, server_.open);
  }
  FakeConnection(const FakeConnection&) = delete;
  FakeConnection& operator=(const FakeConnection&) = delete;
  ~FakeConnection() { --server_.open; }

  std::size_t id() const { return id_; }
  bool alive() const { return server_.up && generation_ == server_.generation; }

  /// A statement that takes `duration`; cancellable, leaving the connection
  /// busy (as a real driver would be with the query still on the server).
  boost::asio::awaitable<void> query(std::chrono::milliseconds duration) {
    if (!alive()) {
      lost_ = true;
      throw ConnectionLostError("fake server went away");
    }
    busy_ = true;
    boost::asio::steady_timer timer(executor_, duration);
    co_await timer.async_wait(boost::asio::use_awaitable);
    busy_ = false;
    if (!alive()) {
      lost_ = true;
      throw ConnectionLostError("fake server went away");
    }
  }

  void begin() { in_transaction_ = true; }
  void commit() { in_transaction_ = false; }

  bool busy_ = false;
  bool in_transaction_ = false;
  bool lost_ = false;

 private:
  FakeServer& server_;
  boost::asio::any_io_executor executor_;
  std::size_t id_;
  std::uint64_t generation_;
};

class FakeDriver {
 public:
  using Connection = FakeConnection;
  static constexpr bool kPings = true;

  FakeDriver(FakeServer& server, boost::asio::any_io_executor executor)
      : server_(&server), executor_(std::move(executor)) {}

  boost::asio::awaitable<std::unique_ptr<FakeConnection>> connect(Clock::time_point deadline) {
    ++server_->connecting;
    server_->max_connecting = std::max(server_->max_connecting, server_->connecting);
    struct Done {
      FakeServer* server;
      ~Done() { --server->connecting; }
    } done{server_};
    if (server_->connect_delay.count() > 0) {
      boost::asio::steady_timer timer(executor_, std::min(deadline, Clock::now() + server_->connect_delay));
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
    if (!server_->up) {
      throw ConnectError("connection refused by the fake server");
    }
    ++server_->connects;
    co_return std::make_unique<FakeConnection>(*server_, executor_);
  }

  boost::asio::awaitable<void> ping(FakeConnection& conn, Clock::time_point /*deadline*/) {
    ++server_->pings;
    if (!conn.alive()) {
      throw ConnectionLostError("fake ping failed");
    }
    co_return;
  }

  boost::asio::awaitable<void> reset(FakeConnection& conn, ResetOnReturn mode, Clock::time_point /*deadline*/) {
    ++server_->resets;
    // A cancelled statement is "drained" after a short delay, as a server
    // answers a cancel request.
    if (conn.busy_) {
      boost::asio::steady_timer timer(executor_, std::chrono::milliseconds{1});
      co_await timer.async_wait(boost::asio::use_awaitable);
      conn.busy_ = false;
    }
    if (conn.in_transaction_ && mode != ResetOnReturn::none) {
      conn.in_transaction_ = false;
    }
  }

  ReturnState return_state(const FakeConnection& conn) const {
    if (conn.lost_) {
      return ReturnState::disconnected;
    }
    if (conn.busy_) {
      return ReturnState::busy;
    }
    if (conn.in_transaction_) {
      return ReturnState::in_transaction;
    }
    return ReturnState::clean;
  }

  void close(std::unique_ptr<FakeConnection> conn) { conn.reset(); }

 private:
  FakeServer* server_;
  boost::asio::any_io_executor executor_;
};

}  // namespace sluice::db::testing
