#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/logger.h>

#include <sluice/redis/client.hpp>
#include <sluice/redis/url.hpp>
#include <sluice/runtime/task_set.hpp>

#include "redis/dedicated_connection.hpp"
#include "redis/resp_reader.hpp"
#include "redis/wait_list.hpp"

namespace sluice::redis::detail {

class Connection;
struct Request;

enum class Outcome : std::uint8_t {
  pending,
  /// Every reply arrived.
  replied,
  /// The connection failed; `failure_code` and `failure` say why.
  failed,
  /// The connection died before writing the request; dispatch it again.
  requeue,
};

/// The caller's side of one request (a command, a pipeline or a
/// transaction). It lives in the calling coroutine's frame; the connection
/// refers to it through `Request::waiter` until it completes or the caller
/// gives up. The timer is armed with the deadline and doubles as the
/// completion signal: the connection cancels it when the outcome is set.
struct RequestWaiter {
  RequestWaiter(const boost::asio::any_io_executor& executor, Clock::time_point request_deadline,
                std::string encoded, std::uint32_t command_count, std::string_view request_name)
      : timer(executor, request_deadline),
        started(Clock::now()),
        deadline(request_deadline),
        payload(std::move(encoded)),
        commands(command_count),
        name(request_name) {}
  RequestWaiter(const RequestWaiter&) = delete;
  RequestWaiter& operator=(const RequestWaiter&) = delete;
  ~RequestWaiter() { detach(); }

  /// Unlinks from the connection's request, which is then skipped if not
  /// yet written, or has its reply discarded.
  void detach() noexcept;
  /// Sets the outcome and wakes the caller.
  void complete(Outcome result) noexcept;

  boost::asio::steady_timer timer;
  Clock::time_point started;
  Clock::time_point deadline;
  /// Encoded commands, or empty when `command` is set.
  std::string payload;
  /// A single command, encoded straight into the write buffer; it lives in
  /// the caller's frame like the waiter.
  const Command* command = nullptr;
  std::uint32_t commands;
  std::string_view name;

  Outcome outcome = Outcome::pending;
  bool written = false;
  Reply reply;
  std::vector<Reply> replies;
  Errc failure_code = Errc::connection_lost;
  std::string failure;
  Request* request = nullptr;
};

/// A connection's record of one request, in send order.
struct Request {
  /// Null for keepalive PINGs and for requests whose caller gave up.
  RequestWaiter* waiter = nullptr;
  std::uint32_t commands = 1;
  std::uint32_t received = 0;
  bool keepalive = false;
  /// Abandoned before it was written, so it was never sent.
  bool skipped = false;
};

class ClientImpl;

/// One multiplexed connection: a writer that sends everything queued in one
/// write, a reader that completes requests in order, and a health check.
/// `run` reconnects until the client stops.
class Connection {
 public:
  Connection(ClientImpl& client, std::size_t index);
  ~Connection();

  boost::asio::awaitable<void> run();

  bool up() const noexcept { return up_; }
  std::size_t pending_commands() const noexcept { return pending_commands_; }
  std::size_t in_flight_commands() const noexcept { return in_flight_commands_; }
  std::size_t unwritten_commands() const noexcept { return unwritten_commands_; }
  bool has_room_for(std::size_t commands) const noexcept;

  /// Queues the waiter's request; precondition: up().
  void enqueue(RequestWaiter& waiter);
  /// Closes the socket so that the session ends; used by close().
  void stop() noexcept;

 private:
  friend class ClientImpl;

  boost::asio::awaitable<void> session();
  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> health_loop();

  void on_reply(Reply reply);
  void pop_finished_front() noexcept;
  void enqueue_keepalive();
  void go_down(const std::string& reason);

  ClientImpl& client_;
  std::size_t index_;
  std::string label_;
  DedicatedConnection stream_;
  boost::asio::steady_timer write_signal_;
  boost::asio::steady_timer sleep_timer_;

  std::deque<Request> requests_;
  // requests_[0, written_) were written (or skipped); the rest wait for the
  // writer.
  std::size_t written_ = 0;
  std::size_t pending_commands_ = 0;
  std::size_t unwritten_commands_ = 0;
  std::size_t in_flight_commands_ = 0;
  bool up_ = false;
  bool writer_waiting_ = false;
  bool ever_up_ = false;

  std::string write_buffer_;
  std::vector<char> read_buffer_;
  Clock::time_point last_read_{};
  Clock::time_point last_write_{};
  Clock::time_point busy_since_{};
};

/// The state shared by a Client, its connection loops and every operation
/// in progress (each holds a shared_ptr to it).
class ClientImpl : public std::enable_shared_from_this<ClientImpl> {
 public:
  ClientImpl(boost::asio::any_io_executor executor, ClientOptions options);
  ~ClientImpl();

  void start();
  /// Stops at once without waiting (used by ~Client).
  void stop_now() noexcept;

  static boost::asio::awaitable<Reply> run_command(std::shared_ptr<ClientImpl> self, Command command,
                                                   std::chrono::milliseconds timeout);
  static boost::asio::awaitable<std::vector<Reply>> run_pipeline(std::shared_ptr<ClientImpl> self,
                                                                 std::vector<Command> commands,
                                                                 std::chrono::milliseconds timeout);
  static boost::asio::awaitable<std::vector<Reply>> run_transaction(std::shared_ptr<ClientImpl> self,
                                                                    std::vector<Command> commands);
  static boost::asio::awaitable<Reply> run_blocking(std::shared_ptr<ClientImpl> self, Command command,
                                                    std::chrono::milliseconds timeout);
  static boost::asio::awaitable<void> run_close(std::shared_ptr<ClientImpl> self,
                                                std::chrono::milliseconds drain_timeout);

  const boost::asio::any_io_executor& executor() const noexcept { return executor_; }
  const ClientOptions& options() const noexcept { return options_; }
  ClientStats stats() const noexcept;

  // Called by connections.
  const Handshake& handshake() const noexcept { return handshake_; }
  std::chrono::milliseconds command_timeout() const noexcept { return options_.command_timeout; }
  spdlog::logger& logger() const noexcept { return *logger_; }
  ClientStats& counters() noexcept { return stats_; }
  bool stopping() const noexcept { return stopping_; }
  void on_connection_up(Connection& connection);
  void on_connection_down(Connection& connection);
  void on_connect_failed(Connection& connection, const std::string& error);
  void on_capacity_freed();
  std::minstd_rand& random() noexcept { return random_; }

 private:
  friend class Connection;
  struct BlockingLease;

  /// Queues the waiter's request and waits for its outcome; throws on
  /// failure, timeout or cancellation.
  boost::asio::awaitable<void> submit(RequestWaiter& waiter);
  boost::asio::awaitable<void> wait_for_connection(RequestWaiter& waiter);
  Connection* pick_connection(std::size_t commands) noexcept;
  [[noreturn]] void throw_not_connected(const RequestWaiter& waiter);
  [[noreturn]] void throw_timeout(const RequestWaiter& waiter, bool written);

  std::size_t pending_commands() const noexcept;
  boost::asio::awaitable<std::unique_ptr<DedicatedConnection>> acquire_blocking(Clock::time_point deadline,
                                                                               std::string_view name);
  void release_blocking(std::unique_ptr<DedicatedConnection> connection, bool reusable) noexcept;

  static boost::asio::awaitable<void> run_connection(std::shared_ptr<ClientImpl> self, std::size_t index);

  boost::asio::any_io_executor executor_;
  ClientOptions options_;
  Handshake handshake_;
  std::shared_ptr<spdlog::logger> logger_;
  ClientStats stats_;
  std::minstd_rand random_;

  std::vector<std::unique_ptr<Connection>> connections_;
  std::size_t next_connection_ = 0;
  std::size_t connections_up_ = 0;
  Clock::time_point down_since_;
  std::string last_connect_error_ = "no connect attempt finished yet";
  Clock::time_point last_failure_log_{};
  std::uint64_t suppressed_failure_logs_ = 0;

  WaitList connect_waiters_;
  WaitList capacity_waiters_;
  WaitList drained_;
  std::size_t waiting_ = 0;

  std::vector<std::unique_ptr<DedicatedConnection>> idle_blocking_;
  std::set<DedicatedConnection*> busy_blocking_;
  std::size_t open_blocking_ = 0;
  WaitList blocking_waiters_;

  bool closing_ = false;
  bool stopping_ = false;
  // Declared last so that it is destroyed first; its tasks hold a
  // shared_ptr to this object, so it is empty by then unless the
  // io_context is being destroyed.
  runtime::TaskSet tasks_;
};

}  // namespace sluice::redis::detail
