#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <sluice/http/error.hpp>
#include <sluice/http/message.hpp>

namespace sluice::http {

/// Separate connection pools per host. A request in one lane never waits for
/// or takes a connection of another lane, because each lane has its own pool
/// and connection limit.
enum class Lane {
  /// Ordinary calls.
  standard,
  /// Long requests that must not occupy a slot of the standard lane, such as
  /// the getUpdates long poll.
  dedicated,
};

struct ClientOptions {
  /// Maximum open connections per host and lane; further requests wait (FIFO)
  /// within their deadline.
  std::size_t max_connections_per_host = 32;
  /// Time an idle keep-alive connection stays in the pool before it is closed.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(30);
  /// Limit for opening a connection: DNS, TCP connect, proxy CONNECT and TLS
  /// handshake together. The request deadline applies too.
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  /// Default total time of one request, from the call until the whole
  /// response is read, including waiting for a pooled connection and one
  /// transparent retry. ClientRequest::timeout overrides it.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(60);
  /// User-Agent header sent when the request sets none; empty sends none.
  std::string user_agent = "sluice/0.1";
  /// Verify the server's certificate and host name. Turn off only for tests.
  bool verify_peer = true;
  /// Trust the system CA store (OpenSSL's default verify paths). It is
  /// loaded at the first https:// connection, so a client of http:// URLs
  /// never pays for it.
  bool use_system_ca_store = true;
  /// Extra trusted CA certificates in PEM, for test and self-hosted servers.
  std::string extra_ca_pem = {};
  /// File with extra trusted CA certificates in PEM; empty for none.
  std::string extra_ca_file = {};
  /// HTTP proxy as "http://[user:password@]host:port"; empty connects
  /// directly. HTTPS goes through a CONNECT tunnel, plain HTTP uses
  /// absolute-form targets; user and password become Basic
  /// Proxy-Authorization.
  std::string proxy = {};
  /// Maximum response body size in bytes.
  std::size_t response_body_limit = 64 * 1024 * 1024;
};

/// One request. Designated initializers keep calls readable:
///   client.request({.method = Verb::post, .url = url, .body = json,
///                   .content_type = "application/json", .operation = "sendMessage"});
struct ClientRequest {
  Verb method = Verb::get;
  /// Absolute http:// or https:// URL.
  std::string url;
  std::string body = {};
  /// Content-Type of the body; empty sends none.
  std::string content_type = {};
  std::vector<std::pair<std::string, std::string>> headers = {};
  /// Total time for this call; empty uses ClientOptions::request_timeout.
  std::optional<std::chrono::milliseconds> timeout = std::nullopt;
  /// Label for logs and errors (for example the Bot API method). Logs show
  /// the host and this label, never the URL, which may contain a token.
  std::string operation = {};
  Lane lane = Lane::standard;
  /// Whether sending the request twice is harmless; empty derives it from the
  /// method (GET, HEAD, PUT, DELETE, OPTIONS, TRACE). See Client::request()
  /// for when it allows a retry.
  std::optional<bool> idempotent = std::nullopt;
};

/// Counters of one client. Read them on the client's executor.
struct ClientStats {
  std::uint64_t requests = 0;
  std::uint64_t connections_opened = 0;
  /// Requests served on a connection taken from the pool.
  std::uint64_t connections_reused = 0;
  /// Idle connections found closed by the server and dropped.
  std::uint64_t stale_connections_dropped = 0;
  /// Requests sent a second time on a fresh connection.
  std::uint64_t retries = 0;
  std::uint64_t proxy_tunnels = 0;
};

/// An HTTP/1.1 client with a keep-alive connection pool per host and lane,
/// TLS through OpenSSL with peer verification on by default, deadlines on
/// every request, and an optional HTTP proxy.
///
/// Runs on the executor given to the constructor, which must be a
/// single-threaded io_context's. Not thread-safe: call it from coroutines on
/// that executor only.
///
/// Lifetimes: requests in progress keep the pool state alive, so the client
/// may be destroyed while they run (they finish, and their connections are
/// closed instead of pooled). Destroy the client before its io_context.
/// Idle pooled connections keep the io_context busy (`run()` does not
/// return) until their idle timeout, `close_idle_connections()` or the
/// client's destruction.
class Client {
 public:
  /// Throws std::invalid_argument for max_connections_per_host of 0 or a
  /// malformed proxy, and boost::system::system_error for extra CAs that
  /// cannot be loaded.
  explicit Client(boost::asio::any_io_executor executor, ClientOptions options = {});
  ~Client();
  Client(Client const&) = delete;
  Client& operator=(Client const&) = delete;

  /// Sends a request and returns the response, whatever its status.
  ///
  /// Errors: throws HttpError with a kind() and a delivery() for every
  /// network and protocol failure (a 4xx or 5xx response is not an error).
  ///
  /// Retry rule: a request is sent a second time, on a new connection, at
  /// most once and only when it failed on a keep-alive connection taken from
  /// the pool before any byte of a response arrived, and either (a) writing
  /// the request failed, so the server processed nothing, or (b) the server
  /// closed the connection without a response and the request is idempotent
  /// (the server may have closed it for idleness just as the request
  /// arrived). A non-idempotent request in case (b) fails with
  /// connection_closed and Delivery::maybe_delivered.
  ///
  /// Deadline: the whole call, retry included, ends by the request timeout;
  /// a resolve that is still running then is abandoned (getaddrinfo cannot
  /// be interrupted) and its result ignored.
  ///
  /// Cancellation: terminal cancellation of the awaiting coroutine closes
  /// the connection in use and throws boost::system::system_error with
  /// operation_aborted. Waiters for a pooled connection are served in FIFO
  /// order.
  boost::asio::awaitable<Response> request(ClientRequest request);

  /// Closes the idle pooled connections. Requests in progress finish, and
  /// their connections are pooled again afterwards.
  void close_idle_connections();

  ClientStats stats() const;

  class State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace sluice::http
