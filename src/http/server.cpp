#include <sluice/http/server.hpp>

#include <exception>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <sluice/runtime/logging.hpp>

#include "http/deadline.hpp"
#include "http/wire.hpp"

namespace sluice::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Pause after accept fails for lack of file descriptors (EMFILE, ENFILE):
// long enough for some connections to close, short enough that a recovered
// server resumes quickly. Retrying at once would spin at 100 % CPU.
constexpr std::chrono::milliseconds kAcceptBackoff{100};
// Minimum interval between two log lines about failing accepts.
constexpr std::chrono::seconds kAcceptErrorLogInterval{10};
// After an error response (413, 400, 408), the server stops sending and reads
// what the client still sends for this long before closing. Closing with
// unread data makes the kernel send an RST, which can destroy the response
// before the client reads it.
constexpr std::chrono::milliseconds kLingerTimeout{500};
constexpr std::size_t kLingerMaxBytes = 4 * 1024 * 1024;
// Size of the first read of each request and of discarding reads.
constexpr std::size_t kReadChunk = 16 * 1024;
// Initial capacity of a serialised response header. A status line and the
// five fields of a typical response fit, and longer headers grow the string.

std::shared_ptr<spdlog::logger> const& logger() {
  static auto const instance = runtime::module_logger("sluice.http");
  return instance;
}

enum class Phase { handshake, idle, reading, handling, writing, black_hole, closing };

bool is_descriptor_exhaustion(error_code const& error) {
  return error == asio::error::no_descriptors ||
         error == boost::system::errc::too_many_files_open_in_system ||
         error == asio::error::no_buffer_space || error == asio::error::no_memory;
}

// State of one accepted connection shared by its coroutine and the server
// (which closes it on stop).
class ConnectionBase {
 public:
  ConnectionBase(std::uint64_t id, tcp::endpoint remote) : id_(id), remote_(std::move(remote)) {}
  virtual ~ConnectionBase() {
    if (deadline_) {
      deadline_->shutdown();
    }
  }
  ConnectionBase(ConnectionBase const&) = delete;
  ConnectionBase& operator=(ConnectionBase const&) = delete;

  virtual tcp::socket& socket() = 0;

  void start_deadline(asio::any_io_executor const& executor) {
    deadline_ = std::make_shared<detail::Deadline>(executor, [this] {
      error_code ignored;
      socket().cancel(ignored);
    });
  }

  void close_now() {
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }

  void reset_now() {
    error_code ignored;
    socket().set_option(tcp::socket::linger(true, 0), ignored);
    socket().close(ignored);
  }

  std::uint64_t id_;
  tcp::endpoint remote_;
  Phase phase_ = Phase::handshake;
  std::shared_ptr<detail::Deadline> deadline_;
  asio::cancellation_signal cancel_;
};

template <class Stream>
class Connection final : public ConnectionBase {
 public:
  template <class... Args>
  Connection(std::uint64_t id, tcp::endpoint remote, Args&&... args)
      : ConnectionBase(id, std::move(remote)), stream_(std::forward<Args>(args)...) {}

  tcp::socket& socket() override { return beast::get_lowest_layer(stream_); }

  Stream stream_;
};

using PlainConnection = Connection<tcp::socket>;
using TlsConnection = Connection<asio::ssl::stream<tcp::socket>>;

template <class Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, tcp::socket>;

Response make_error_response(Status status, unsigned version, std::string_view text) {
  Response response{status, version};
  response.set(Field::content_type, "text/plain; charset=utf-8");
  response.body() = std::string(text);
  response.keep_alive(false);
  response.prepare_payload();
  return response;
}

}  // namespace

class Server::Impl : public std::enable_shared_from_this<Server::Impl> {
 public:
  Impl(asio::any_io_executor executor, ServerOptions options, Handler handler)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        handler_(std::move(handler)),
        acceptor_(executor_),
        connections_changed_(executor_),
        run_finished_(executor_),
        grace_timer_(executor_),
        backoff_timer_(executor_) {
    if (!handler_) {
      throw std::invalid_argument("http::Server: the handler is empty");
    }
  }

  void listen();
  asio::awaitable<void> run();
  void stop(std::chrono::milliseconds grace);
  asio::awaitable<void> wait_stopped();
  void close_all_now();

  asio::any_io_executor executor_;
  ServerOptions options_;
  Handler handler_;
  tcp::acceptor acceptor_;
  std::unordered_map<std::uint64_t, std::shared_ptr<ConnectionBase>> connections_;
  detail::Event connections_changed_;
  detail::Event run_finished_;
  asio::steady_timer grace_timer_;
  asio::steady_timer backoff_timer_;
  std::optional<Clock::time_point> grace_deadline_;
  tcp::endpoint local_endpoint_;
  bool listening_ = false;
  bool running_ = false;
  bool finished_ = false;
  bool stopping_ = false;
  std::uint64_t next_connection_id_ = 1;
  ServerStats stats_;
  Clock::time_point last_accept_error_log_{};
  std::uint64_t suppressed_accept_errors_ = 0;

 private:
  void on_accept_error(error_code const& error);
  void start_connection(tcp::socket socket);
  void on_connection_done(std::uint64_t id, std::exception_ptr error);

  template <class Stream>
  static asio::awaitable<void> serve(std::shared_ptr<Impl> self, std::shared_ptr<Connection<Stream>> connection,
                                     bool black_hole);
  template <class Stream>
  asio::awaitable<void> serve_requests(Connection<Stream>& connection);
  /// Writes `response` and returns the error. Cancellation: the connection's
  /// deadline cancels the socket, which ends the write with operation_aborted.
  template <class Stream>
  static asio::awaitable<error_code> write_response(Stream& stream, Response& response);
  template <class Stream>
  asio::awaitable<void> answer_read_error(Connection<Stream>& connection, error_code const& error,
                                          unsigned version);
  template <class Stream>
  asio::awaitable<void> send_cut_body(Connection<Stream>& connection, Response& response,
                                      std::size_t cut_body_bytes);
  static asio::awaitable<void> swallow_until_closed(ConnectionBase& connection, auto& stream);
  asio::awaitable<Reply> call_handler(Request request, RequestInfo info);
  void finish_response(Response& response, unsigned version, bool keep_alive) const;
};

void Server::Impl::listen() {
  if (listening_) {
    return;
  }
  error_code error;
  auto const address = asio::ip::make_address(options_.address, error);
  if (error) {
    throw boost::system::system_error(error, "http::Server: invalid listen address '" + options_.address + "'");
  }
  tcp::endpoint const endpoint{address, options_.port};
  auto const where = options_.address + ":" + std::to_string(options_.port);

  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint, error);
  if (error) {
    throw boost::system::system_error(error, "http::Server: cannot bind " + where);
  }
  acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    throw boost::system::system_error(error, "http::Server: cannot listen on " + where);
  }
  listening_ = true;
  local_endpoint_ = acceptor_.local_endpoint();
  logger()->info("http server listening address={} port={} tls={} body_limit={}", options_.address,
                 local_endpoint_.port(), options_.tls != nullptr, options_.body_limit);
}

asio::awaitable<void> Server::Impl::run() {
  if (running_) {
    throw std::logic_error("http::Server::run() called twice");
  }
  auto self = shared_from_this();
  listen();
  running_ = true;

  while (!stopping_) {
    if (connections_.size() >= options_.max_connections) {
      co_await connections_changed_.wait();
    } else {
      auto [error, socket] = co_await acceptor_.async_accept(use_tuple);
      if (!error) {
        start_connection(std::move(socket));
        continue;
      }
      if (stopping_) {
        break;
      }
      auto const cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
      if (cancelled == asio::cancellation_type::none) {
        on_accept_error(error);
        if (is_descriptor_exhaustion(error)) {
          backoff_timer_.expires_after(kAcceptBackoff);
          co_await backoff_timer_.async_wait(use_tuple);
        }
      }
    }
    auto const cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
    if (cancelled != asio::cancellation_type::none) {
      stop(std::chrono::milliseconds(0));
    }
  }

  // Waiting for the connections must not be cut short by the cancellation
  // that may have triggered the stop.
  co_await asio::this_coro::reset_cancellation_state();
  while (!connections_.empty()) {
    co_await connections_changed_.wait();
  }
  grace_timer_.cancel();
  finished_ = true;
  run_finished_.notify_all();
  logger()->info("http server stopped port={} connections_accepted={} requests={}", local_endpoint_.port(),
                 stats_.connections_accepted, stats_.requests);
}

void Server::Impl::on_accept_error(error_code const& error) {
  ++stats_.accept_errors;
  auto const now = Clock::now();
  if (now - last_accept_error_log_ < kAcceptErrorLogInterval) {
    ++suppressed_accept_errors_;
    return;
  }
  last_accept_error_log_ = now;
  logger()->warn("http server accept failed error=\"{}\" open_connections={} suppressed={}", error.message(),
                 connections_.size(), suppressed_accept_errors_);
  suppressed_accept_errors_ = 0;
}

void Server::Impl::stop(std::chrono::milliseconds grace) {
  auto const deadline = Clock::now() + grace;
  if (stopping_ && grace_deadline_ && *grace_deadline_ <= deadline) {
    return;
  }
  if (!stopping_) {
    logger()->info("http server stopping open_connections={} grace_ms={}", connections_.size(), grace.count());
  }
  stopping_ = true;
  grace_deadline_ = deadline;

  error_code ignored;
  acceptor_.close(ignored);
  backoff_timer_.cancel();

  // Connections without a request in progress close now; the others close
  // after their response or at the grace deadline.
  std::vector<std::shared_ptr<ConnectionBase>> idle;
  for (auto& [id, connection] : connections_) {
    if (connection->phase_ == Phase::idle || connection->phase_ == Phase::black_hole ||
        connection->phase_ == Phase::handshake) {
      idle.push_back(connection);
    }
  }
  for (auto& connection : idle) {
    connection->close_now();
  }

  grace_timer_.expires_at(deadline);
  grace_timer_.async_wait([weak = weak_from_this()](error_code const& error) {
    auto self = weak.lock();
    if (!error && self) {
      if (!self->connections_.empty()) {
        logger()->warn("http server closing connections at the stop deadline count={}", self->connections_.size());
      }
      self->close_all_now();
    }
  });
  connections_changed_.notify_all();
}

void Server::Impl::close_all_now() {
  std::vector<std::shared_ptr<ConnectionBase>> open;
  open.reserve(connections_.size());
  for (auto& [id, connection] : connections_) {
    open.push_back(connection);
  }
  for (auto& connection : open) {
    connection->cancel_.emit(asio::cancellation_type::terminal);
    connection->close_now();
  }
}

asio::awaitable<void> Server::Impl::wait_stopped() {
  while (running_ && !finished_) {
    co_await run_finished_.wait();
    auto const cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
    if (cancelled != asio::cancellation_type::none) {
      throw boost::system::system_error(asio::error::operation_aborted, "http::Server::wait_stopped");
    }
  }
}

void Server::Impl::start_connection(tcp::socket socket) {
  auto const id = next_connection_id_++;
  ++stats_.connections_accepted;

  error_code error;
  auto remote = socket.remote_endpoint(error);
  if (error) {
    // The peer is already gone.
    return;
  }
  socket.set_option(tcp::no_delay(true), error);

  RequestInfo const info{.remote = remote, .connection_id = id, .request_index = 0, .tls = options_.tls != nullptr};
  auto action = AcceptAction::serve;
  if (options_.on_accept) {
    action = options_.on_accept(info);
  }
  if (action == AcceptAction::reset) {
    socket.set_option(tcp::socket::linger(true, 0), error);
    socket.close(error);
    return;
  }
  if (action == AcceptAction::close) {
    socket.shutdown(tcp::socket::shutdown_both, error);
    socket.close(error);
    return;
  }

  auto on_done = [self = shared_from_this(), id](std::exception_ptr failure) {
    self->on_connection_done(id, std::move(failure));
  };
  bool const black_hole = action == AcceptAction::black_hole;
  if (options_.tls != nullptr) {
    auto connection = std::make_shared<TlsConnection>(id, remote, std::move(socket), *options_.tls);
    connection->start_deadline(executor_);
    connections_.emplace(id, connection);
    auto slot = connection->cancel_.slot();
    asio::co_spawn(executor_, serve(shared_from_this(), std::move(connection), black_hole),
                   asio::bind_cancellation_slot(slot, std::move(on_done)));
  } else {
    // Synchronous writes on this socket then return would_block instead of
    // blocking, as write_response expects. Asynchronous operations are
    // unaffected.
    socket.non_blocking(true, error);
    if (error) {
      logger()->warn("http connection cannot enter non-blocking mode connection_id={} error=\"{}\"", id,
                     error.message());
      return;
    }
    auto connection = std::make_shared<PlainConnection>(id, remote, std::move(socket));
    connection->start_deadline(executor_);
    connections_.emplace(id, connection);
    auto slot = connection->cancel_.slot();
    asio::co_spawn(executor_, serve(shared_from_this(), std::move(connection), black_hole),
                   asio::bind_cancellation_slot(slot, std::move(on_done)));
  }
  stats_.connections_open = connections_.size();
}

void Server::Impl::on_connection_done(std::uint64_t id, std::exception_ptr failure) {
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (boost::system::system_error const& error) {
      if (error.code() == asio::error::operation_aborted) {
        logger()->debug("http connection cancelled connection_id={}", id);
      } else {
        logger()->error("http connection failed connection_id={} error=\"{}\"", id, error.what());
      }
    } catch (std::exception const& error) {
      logger()->error("http connection failed connection_id={} error=\"{}\"", id, error.what());
    } catch (...) {
      logger()->error("http connection failed connection_id={} error=unknown", id);
    }
  }
  auto const found = connections_.find(id);
  if (found != connections_.end()) {
    found->second->close_now();
    connections_.erase(found);
  }
  stats_.connections_open = connections_.size();
  connections_changed_.notify_all();
}

template <class Stream>
asio::awaitable<void> Server::Impl::serve(std::shared_ptr<Impl> self, std::shared_ptr<Connection<Stream>> connection,
                                          bool black_hole) {
  auto& options = self->options_;
  if constexpr (kIsTls<Stream>) {
    connection->phase_ = Phase::handshake;
    connection->deadline_->expires_after(options.header_timeout);
    auto [error] = co_await connection->stream_.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (error) {
      logger()->debug("http tls handshake failed connection_id={} error=\"{}\"", connection->id_, error.message());
      co_return;
    }
  }

  if (black_hole) {
    co_await swallow_until_closed(*connection, connection->stream_);
  } else {
    co_await self->serve_requests(*connection);
  }
  connection->deadline_->shutdown();
}

namespace {

// Reads the header (`header_only`) or the rest of a request. A plain socket
// is in non-blocking mode, so what has arrived is parsed at once. Beast's
// asynchronous read completes through the executor's queue even when the
// buffer contains the whole request: two turns behind every queued handler
// for a small request.
template <class Stream>
asio::awaitable<error_code> read_request_part(Stream& stream, beast::flat_buffer& buffer,
                                             bhttp::request_parser<bhttp::string_body>& parser, bool header_only) {
  if constexpr (!kIsTls<Stream>) {
    error_code error;
    if (header_only) {
      bhttp::read_header(stream, buffer, parser, error);
    } else {
      bhttp::read(stream, buffer, parser, error);
    }
    if (!detail::would_block(error)) {
      co_return error;
    }
  }
  if (header_only) {
    auto [error, size] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
    co_return error;
  }
  auto [error, size] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
  co_return error;
}

}  // namespace

template <class Stream>
asio::awaitable<void> Server::Impl::serve_requests(Connection<Stream>& connection) {
  auto& stream = connection.stream_;
  auto& deadline = *connection.deadline_;
  beast::flat_buffer buffer;
  RequestInfo info{.remote = connection.remote_,
                   .connection_id = connection.id_,
                   .request_index = 0,
                   .tls = kIsTls<Stream>};

  for (;;) {
    // Wait for the first byte of the next request under the idle timeout
    // (the header timeout for the first request).
    if (buffer.size() == 0) {
      connection.phase_ = Phase::idle;
      if (stopping_) {
        break;
      }
      deadline.expires_after(info.request_index == 0 ? options_.header_timeout : options_.idle_timeout);
      auto [error, size] = co_await stream.async_read_some(buffer.prepare(kReadChunk), use_tuple);
      if (error) {
        break;
      }
      buffer.commit(size);
    }

    auto const request_start = Clock::now();
    connection.phase_ = Phase::reading;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(options_.header_limit);
    parser.body_limit(options_.body_limit);
    deadline.expires_at(request_start + options_.header_timeout);
    auto const header_error = co_await read_request_part(stream, buffer, parser, true);
    if (header_error) {
      co_await answer_read_error(connection, header_error, 11);
      break;
    }

    auto const version = parser.get().version();
    if (!parser.is_done() && bhttp::token_list(parser.get()[Field::expect]).exists("100-continue")) {
      deadline.expires_after(options_.write_timeout);
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [write_error, written] = co_await asio::async_write(stream, asio::buffer(kContinue), use_tuple);
      if (write_error) {
        break;
      }
    }
    if (!parser.is_done()) {
      deadline.expires_at(request_start + options_.read_timeout);
      auto const body_error = co_await read_request_part(stream, buffer, parser, false);
      if (body_error) {
        co_await answer_read_error(connection, body_error, version);
        break;
      }
    }

    connection.phase_ = Phase::handling;
    deadline.clear();
    ++info.request_index;
    ++stats_.requests;
    Request request = parser.release();
    bool const client_keep_alive = request.keep_alive();
    auto reply = co_await call_handler(std::move(request), info);

    switch (reply.action) {
      case ConnectionAction::reset:
        connection.reset_now();
        co_return;
      case ConnectionAction::black_hole:
        co_await swallow_until_closed(connection, stream);
        co_return;
      case ConnectionAction::cut_body:
        co_await send_cut_body(connection, reply.response, reply.cut_body_bytes);
        co_return;
      case ConnectionAction::respond:
      case ConnectionAction::close_after:
        break;
    }

    bool const keep_alive = client_keep_alive && reply.action == ConnectionAction::respond && !stopping_;
    finish_response(reply.response, version, keep_alive);
    connection.phase_ = Phase::writing;
    deadline.expires_after(options_.write_timeout);
    auto const write_error = co_await write_response(stream, reply.response);
    if (write_error || !keep_alive) {
      break;
    }
  }

  connection.phase_ = Phase::closing;
  connection.close_now();
}

template <class Stream>
asio::awaitable<error_code> Server::Impl::write_response(Stream& stream, Response& response) {
  if constexpr (!kIsTls<Stream>) {
    if (!response.chunked()) {
      // The plain socket is in non-blocking mode (see start_connection): a
      // response that fits the socket buffer is sent without the executor
      // round trip of an asynchronous write.
      auto const written = co_await detail::write_message(stream, response);
      co_return written.error;
    }
  }
  bhttp::response_serializer<bhttp::string_body> serializer{response};
  auto [error, written] = co_await bhttp::async_write(stream, serializer, use_tuple);
  co_return error;
}

template <class Stream>
asio::awaitable<void> Server::Impl::answer_read_error(Connection<Stream>& connection, error_code const& error,
                                                      unsigned version) {
  auto& stream = connection.stream_;
  std::optional<Response> response;
  if (connection.deadline_->expired()) {
    // TLS: a read cancelled inside the TLS layer leaves the session in an
    // unknown state, so the connection is closed without a response.
    if (!kIsTls<Stream>) {
      response = make_error_response(Status::request_timeout, version, "request timed out\n");
    }
  } else if (error == bhttp::error::body_limit) {
    response = make_error_response(Status::payload_too_large, version,
                                   "request body larger than " + std::to_string(options_.body_limit) + " bytes\n");
  } else if (error == bhttp::error::header_limit) {
    response = make_error_response(Status::request_header_fields_too_large, version,
                                   "request headers larger than " + std::to_string(options_.header_limit) + " bytes\n");
  } else if (error.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
             error != bhttp::error::end_of_stream && error != bhttp::error::partial_message) {
    response = make_error_response(Status::bad_request, version, "malformed request: " + error.message() + "\n");
  }
  logger()->debug("http request read failed connection_id={} error=\"{}\" answered={}", connection.id_,
                  error.message(), response.has_value());
  if (!response) {
    co_return;
  }

  if (!options_.server_name.empty()) {
    response->set(Field::server, options_.server_name);
  }
  connection.phase_ = Phase::writing;
  connection.deadline_->expires_after(options_.write_timeout);
  auto [write_error, written] = co_await bhttp::async_write(stream, *response, use_tuple);
  if (write_error || kIsTls<Stream>) {
    co_return;
  }

  // Lingering close: see kLingerTimeout.
  connection.phase_ = Phase::closing;
  error_code ignored;
  connection.socket().shutdown(tcp::socket::shutdown_send, ignored);
  connection.deadline_->expires_after(kLingerTimeout);
  std::vector<char> discard(kReadChunk);
  std::size_t drained = 0;
  while (drained < kLingerMaxBytes) {
    auto [read_error, size] = co_await connection.socket().async_read_some(asio::buffer(discard), use_tuple);
    if (read_error) {
      break;
    }
    drained += size;
  }
}

template <class Stream>
asio::awaitable<void> Server::Impl::send_cut_body(Connection<Stream>& connection, Response& response,
                                                  std::size_t cut_body_bytes) {
  auto& stream = connection.stream_;
  finish_response(response, response.version(), false);
  connection.phase_ = Phase::writing;
  connection.deadline_->expires_after(options_.write_timeout);

  bhttp::response_serializer<bhttp::string_body> serializer{response};
  auto [header_error, header_size] = co_await bhttp::async_write_header(stream, serializer, use_tuple);
  if (header_error) {
    co_return;
  }
  auto const& body = response.body();
  auto const size = cut_body_bytes < body.size() ? cut_body_bytes : body.size() / 2;
  if (size > 0) {
    co_await asio::async_write(stream, asio::buffer(body.data(), size), use_tuple);
  }
  connection.close_now();
}

asio::awaitable<void> Server::Impl::swallow_until_closed(ConnectionBase& connection, auto& stream) {
  connection.phase_ = Phase::black_hole;
  connection.deadline_->clear();
  std::vector<char> discard(kReadChunk);
  for (;;) {
    auto [error, size] = co_await stream.async_read_some(asio::buffer(discard), use_tuple);
    if (error) {
      break;
    }
  }
  connection.close_now();
}

asio::awaitable<Reply> Server::Impl::call_handler(Request request, RequestInfo info) {
  // The request and info live in this frame until the handler's awaitable
  // completes, so a handler coroutine may take them by reference.
  std::exception_ptr failure;
  try {
    auto pending = handler_(std::move(request), info);
    co_return co_await std::move(pending);
  } catch (...) {
    failure = std::current_exception();
  }

  std::string reason = "unknown exception";
  try {
    std::rethrow_exception(failure);
  } catch (std::exception const& error) {
    reason = error.what();
  } catch (...) {
  }
  if (stopping_) {
    logger()->debug("http handler ended during stop connection_id={} error=\"{}\"", info.connection_id, reason);
  } else {
    logger()->error("http handler threw connection_id={} request_index={} error=\"{}\"", info.connection_id,
                    info.request_index, reason);
  }
  co_return Reply{.response = make_error_response(Status::internal_server_error, 11, "internal server error\n"),
                  .action = ConnectionAction::close_after};
}

void Server::Impl::finish_response(Response& response, unsigned version, bool keep_alive) const {
  response.version(version);
  response.keep_alive(keep_alive);
  if (!options_.server_name.empty() && response.find(Field::server) == response.end()) {
    response.set(Field::server, options_.server_name);
  }
  response.prepare_payload();
}

Server::Server(asio::any_io_executor executor, ServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), std::move(handler))) {}

Server::~Server() {
  if (!impl_) {
    return;
  }
  impl_->stopping_ = true;
  error_code ignored;
  impl_->acceptor_.close(ignored);
  impl_->backoff_timer_.cancel();
  impl_->grace_timer_.cancel();
  impl_->close_all_now();
  impl_->connections_changed_.notify_all();
}

void Server::listen() { impl_->listen(); }

std::uint16_t Server::port() const { return local_endpoint().port(); }

tcp::endpoint Server::local_endpoint() const {
  if (!impl_->listening_) {
    throw std::logic_error("http::Server: local_endpoint() called before listen()");
  }
  return impl_->local_endpoint_;
}

asio::awaitable<void> Server::run() {
  auto impl = impl_;
  co_await impl->run();
}

void Server::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

asio::awaitable<void> Server::wait_stopped() {
  auto impl = impl_;
  co_await impl->wait_stopped();
}

ServerStats Server::stats() const { return impl_->stats_; }

}  // namespace sluice::http
