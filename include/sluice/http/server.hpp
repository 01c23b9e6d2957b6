#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <sluice/http/message.hpp>

namespace boost::asio::ssl {
class context;
}

namespace sluice::http {

/// Action the server takes on the connection after the handler returns.
///
/// Everything except `respond` and `close_after` exists for fault injection
/// (the sandbox uses it to test clients against broken servers).
enum class ConnectionAction {
  /// Send the response and keep the connection open if both sides allow it.
  respond,
  /// Send the response with `Connection: close`, then close.
  close_after,
  /// Send nothing and close at once with a TCP RST (SO_LINGER 0).
  reset,
  /// Send the headers and `Reply::cut_body_bytes` bytes of the body, then
  /// close. The Content-Length header still announces the whole body.
  cut_body,
  /// Send nothing and keep the connection open until the client closes it or
  /// the server stops. Bytes the client sends are read and discarded.
  black_hole,
};

/// Action the server takes on a connection it has just accepted, before it
/// reads anything (see `ServerOptions::on_accept`).
enum class AcceptAction {
  /// Serve requests normally.
  serve,
  /// Close at once with a TCP RST.
  reset,
  /// Close at once with a normal FIN.
  close,
  /// Read nothing, send nothing and keep the connection open until the client
  /// closes it or the server stops.
  black_hole,
};

/// A handler's result: the response and the action to take on the connection.
struct Reply {
  Response response;
  ConnectionAction action = ConnectionAction::respond;
  /// Number of body bytes sent before closing when `action` is `cut_body`.
  /// Values at or past the body size send half of the body.
  std::size_t cut_body_bytes = 0;
};

/// Facts about the connection a request arrived on.
struct RequestInfo {
  boost::asio::ip::tcp::endpoint remote;
  /// Server-wide connection number, starting at 1, in accept order.
  std::uint64_t connection_id = 0;
  /// Number of the request on its connection, starting at 1.
  std::uint64_t request_index = 0;
  bool tls = false;
};

/// Serves one request. Runs on the server's executor; the connection waits
/// for it (requests on one connection are handled one at a time, in order).
/// An exception becomes a 500 response and closes the connection. The
/// handler's coroutine receives terminal cancellation when the server stops
/// and the grace period ends.
using Handler = std::function<boost::asio::awaitable<Reply>(Request&&, RequestInfo const&)>;

/// Decides what to do with a new connection before reading from it.
using AcceptHook = std::function<AcceptAction(RequestInfo const&)>;

struct ServerOptions {
  /// Address to bind, IPv4 or IPv6 literal.
  std::string address = "127.0.0.1";
  /// Port to bind; 0 picks an ephemeral port (read it with `Server::port()`).
  std::uint16_t port = 0;
  /// Maximum request body size in bytes; a larger body gets 413 and the
  /// connection is closed. Default 1 MiB, enough for webhook updates.
  std::size_t body_limit = 1024 * 1024;
  /// Maximum size of the request line plus headers in bytes; larger gets 431.
  std::uint32_t header_limit = 16 * 1024;
  /// Time from the first byte of a request (or from accept, for the first
  /// request, including the TLS handshake) until its headers are complete.
  /// On expiry the server sends 408 if it received part of a request, then
  /// closes the connection.
  std::chrono::milliseconds header_timeout = std::chrono::seconds(10);
  /// Time from the first byte of a request until the whole request is read.
  std::chrono::milliseconds read_timeout = std::chrono::seconds(60);
  /// Time a keep-alive connection may wait for its next request.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  /// Time allowed for writing one response.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(60);
  /// Maximum number of open connections. When reached, the server stops
  /// accepting: new connections wait in the kernel's listen backlog (and are
  /// refused by the kernel once it is full) until a connection closes.
  std::size_t max_connections = 10'000;
  /// TLS context for HTTPS; nullptr serves plain HTTP. Must outlive the
  /// server.
  boost::asio::ssl::context* tls = nullptr;
  /// Called for every accepted connection before anything is read; empty
  /// serves every connection.
  AcceptHook on_accept = nullptr;
  /// Value of the Server header of every response; empty sends none.
  std::string server_name = "sluice";
};

/// Counters of one server. Read them on the server's executor.
struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t requests = 0;
  /// Failed accepts, such as EMFILE when the process has no free descriptor.
  std::uint64_t accept_errors = 0;
};

/// An HTTP/1.1 server with keep-alive, optional TLS, timeouts, a connection
/// limit, graceful stop and fault injection, for webhooks, metrics and the
/// local Bot API sandbox.
///
/// All work happens on the executor given to the constructor, which must be
/// a single-threaded io_context's (the server takes no locks). Not
/// thread-safe: call every member on that executor.
///
/// Lifetimes: the handler and everything it refers to must outlive the
/// server's connections, which end when `run()` completes. Destroying the
/// server closes its listener and all connections at once; their coroutines
/// finish on the next turns of the loop.
///
/// Example:
///   Server server(ctx.get_executor(), {.port = 8080}, handler);
///   server.listen();                       // port() is known from here on
///   co_spawn(ctx, server.run(), ...);      // accept until stop()
///   ...
///   server.stop(std::chrono::seconds(5));  // graceful: finish in-flight requests
class Server {
 public:
  Server(boost::asio::any_io_executor executor, ServerOptions options, Handler handler);
  ~Server();
  Server(Server const&) = delete;
  Server& operator=(Server const&) = delete;

  /// Binds and listens. Throws boost::system::system_error naming the
  /// address and port if either fails. Called by `run()` if not done before.
  void listen();

  /// Returns the bound port; valid after `listen()`.
  std::uint16_t port() const;

  /// Returns the bound endpoint; valid after `listen()`.
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  /// Accepts and serves connections until `stop()`, then waits until every
  /// connection has closed and returns. Call it once.
  ///
  /// Cancellation: terminal cancellation of the awaiting coroutine acts as
  /// `stop(0)` and the call still waits for the connections to unwind.
  /// Errors: throws boost::system::system_error if listening fails. Accept
  /// errors are logged; running out of file descriptors (EMFILE, ENFILE)
  /// pauses accepting for a short back-off instead of spinning.
  boost::asio::awaitable<void> run();

  /// Starts a graceful stop: closes the listener at once, closes idle
  /// keep-alive and black-holed connections, lets requests in progress finish
  /// (their responses carry `Connection: close`), and after `grace` closes
  /// the connections that remain and cancels their handlers. Returns at once;
  /// `run()` completes when the last connection is gone. Idempotent: a later
  /// call can only shorten the grace period.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  /// Waits until `run()` has finished (returns at once if the server was
  /// never run or has already stopped). Cancellation: terminal cancellation
  /// ends the wait early with boost::asio::error::operation_aborted.
  boost::asio::awaitable<void> wait_stopped();

  ServerStats stats() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::http
