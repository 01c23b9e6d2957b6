#include <sluice/http/client.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include <sluice/runtime/logging.hpp>

#include "http/deadline.hpp"
#include "http/url_port.hpp"
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

// Largest response header block accepted. Telegram sends well under 1 KiB;
// 64 KiB leaves room for proxies and CDNs that add headers.
constexpr std::uint32_t kResponseHeaderLimit = 64 * 1024;
// URLs whose parsed form a client keeps.
constexpr std::size_t kMaxCachedTargets = 256;
// Port of a proxy URL without one, as curl assumes.
constexpr std::uint16_t kDefaultProxyPort = 1080;

std::shared_ptr<spdlog::logger> const& logger() {
  static auto const instance = runtime::module_logger("sluice.http");
  return instance;
}

long long to_ms(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

std::string base64_encode(std::string_view input) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string output;
  output.reserve((input.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < input.size(); i += 3) {
    auto const chunk = (static_cast<unsigned char>(input[i]) << 16) | (static_cast<unsigned char>(input[i + 1]) << 8) |
                       static_cast<unsigned char>(input[i + 2]);
    output += kAlphabet[(chunk >> 18) & 0x3F];
    output += kAlphabet[(chunk >> 12) & 0x3F];
    output += kAlphabet[(chunk >> 6) & 0x3F];
    output += kAlphabet[chunk & 0x3F];
  }
  if (i + 1 == input.size()) {
    auto const chunk = static_cast<unsigned char>(input[i]) << 16;
    output += kAlphabet[(chunk >> 18) & 0x3F];
    output += kAlphabet[(chunk >> 12) & 0x3F];
    output += "==";
  } else if (i + 2 == input.size()) {
    auto const chunk = (static_cast<unsigned char>(input[i]) << 16) | (static_cast<unsigned char>(input[i + 1]) << 8);
    output += kAlphabet[(chunk >> 18) & 0x3F];
    output += kAlphabet[(chunk >> 12) & 0x3F];
    output += kAlphabet[(chunk >> 6) & 0x3F];
    output += '=';
  }
  return output;
}

// Destination of a request, taken from its URL.
struct Target {
  bool tls = false;
  std::string host;       // for DNS, SNI and certificate checks; IPv6 without brackets
  std::uint16_t port = 0;
  std::string authority;  // Host header value: host, bracketed if IPv6, plus ":port" unless default
  std::string origin_form;  // path and query
  bool host_is_ip = false;
};

Target parse_target(std::string const& url, std::string const& operation) {
  auto const fail = [&](std::string const& why) {
    return HttpError(ErrorKind::invalid_request, Delivery::not_sent, "", operation, {}, why);
  };
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    throw fail("the URL is not a valid absolute URI (" + parsed.error().message() + ")");
  }
  auto const& view = *parsed;
  Target target;
  if (view.scheme_id() == boost::urls::scheme::https) {
    target.tls = true;
  } else if (view.scheme_id() != boost::urls::scheme::http) {
    throw fail("unsupported URL scheme '" + std::string(view.scheme()) + "' (expected http or https)");
  }
  target.host = view.host_address();
  if (target.host.empty()) {
    throw fail("the URL has no host");
  }
  auto const host_type = view.host_type();
  target.host_is_ip = host_type == boost::urls::host_type::ipv4 || host_type == boost::urls::host_type::ipv6;
  std::uint16_t const default_port = target.tls ? 443 : 80;
  target.port = view.has_port() ? detail::port_of(view) : default_port;
  if (view.has_port() && target.port == 0) {
    throw fail("the URL has port 0 or an invalid port");
  }
  // encoded_host() keeps the brackets of an IPv6 literal.
  target.authority = std::string(view.encoded_host());
  if (target.port != default_port) {
    target.authority += ":" + std::to_string(target.port);
  }
  target.origin_form = view.encoded_path().empty() ? "/" : std::string(view.encoded_path());
  if (view.has_query()) {
    target.origin_form += "?" + std::string(view.encoded_query());
  }
  return target;
}

struct ProxyConfig {
  std::string host;
  std::uint16_t port = kDefaultProxyPort;
  std::string authority;
  std::string authorization;  // "Basic ..." or empty
};

std::optional<ProxyConfig> parse_proxy(std::string const& proxy) {
  if (proxy.empty()) {
    return std::nullopt;
  }
  auto parsed = boost::urls::parse_uri(proxy);
  if (!parsed || parsed->scheme_id() != boost::urls::scheme::http || parsed->host_address().empty()) {
    throw std::invalid_argument("http::ClientOptions::proxy must look like http://[user:password@]host:port");
  }
  ProxyConfig config;
  config.host = parsed->host_address();
  if (parsed->has_port()) {
    config.port = detail::port_of(*parsed);
    if (config.port == 0) {
      throw std::invalid_argument("http::ClientOptions::proxy has port 0 or a port above 65535");
    }
  }
  config.authority = std::string(parsed->encoded_host()) + ":" + std::to_string(config.port);
  if (parsed->has_userinfo()) {
    config.authorization = "Basic " + base64_encode(parsed->user() + ":" + parsed->password());
  }
  return config;
}

bool is_idempotent(Verb method) {
  switch (method) {
    case Verb::get:
    case Verb::head:
    case Verb::put:
    case Verb::delete_:
    case Verb::options:
    case Verb::trace:
      return true;
    default:
      return false;
  }
}

bool is_parse_error(error_code const& error) {
  return error.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         error != bhttp::error::end_of_stream && error != bhttp::error::partial_message &&
         error != bhttp::error::body_limit;
}

class PooledConnection {
 public:
  PooledConnection(asio::any_io_executor const& executor, std::uint64_t id)
      : id_(id), socket_(executor), deadline_(std::make_shared<detail::Deadline>(executor, [this] {
          error_code ignored;
          lowest().cancel(ignored);
        })) {}
  ~PooledConnection() { deadline_->shutdown(); }
  PooledConnection(PooledConnection const&) = delete;
  PooledConnection& operator=(PooledConnection const&) = delete;

  tcp::socket& lowest() { return tls_ ? tls_->next_layer() : socket_; }

  void close() {
    error_code ignored;
    lowest().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close(ignored);
  }

  // Checks without blocking that the server has not closed the connection
  // and sent nothing unrequested while it was idle: one recv() that peeks.
  bool still_open() {
    char byte = 0;
    auto const received = ::recv(lowest().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  std::uint64_t id_;
  Clock::time_point idle_since_{};
  tcp::socket socket_;  // moved into tls_ for HTTPS
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  std::shared_ptr<detail::Deadline> deadline_;
  beast::flat_buffer buffer_;
  bool in_idle_pool_ = false;
};

using ConnectionPtr = std::shared_ptr<PooledConnection>;

struct Waiter {
  explicit Waiter(asio::any_io_executor const& executor) : timer(executor) {}
  asio::steady_timer timer;
  ConnectionPtr handed;       // an idle connection given to this waiter
  bool slot_granted = false;  // or the right to open a new connection
};

struct HostPool {
  std::string key;
  std::vector<ConnectionPtr> idle;  // most recently used last
  std::size_t open = 0;             // idle + in use + connecting
  std::deque<std::shared_ptr<Waiter>> waiters;
  // The timer of the sweep, due when the oldest idle connection reaches the
  // idle timeout.
  std::unique_ptr<asio::steady_timer> sweep_timer;
  bool sweep_armed = false;
};

// Result of sending one request on one connection.
struct Exchange {
  error_code error;
  bool write_failed = false;
  std::size_t bytes_written = 0;
  bool got_response_bytes = false;
  bool reusable = false;
  Response response;
};

}  // namespace

class Client::State : public std::enable_shared_from_this<Client::State> {
 public:
  State(asio::any_io_executor executor, ClientOptions options)
      : executor_(std::move(executor)), options_(std::move(options)), proxy_(parse_proxy(options_.proxy)) {
    if (options_.max_connections_per_host == 0) {
      throw std::invalid_argument("http::ClientOptions::max_connections_per_host must be at least 1");
    }
    // Loading the system's CA certificates took about 10 ms and 4 MiB on
    // Debian 12, which a client of plain http:// URLs never needs. Extra CAs
    // are loaded now, so that the constructor reports a bad one.
    if (!options_.extra_ca_pem.empty() || !options_.extra_ca_file.empty()) {
      tls_context();
    }
  }

  asio::ssl::context& tls_context() {
    if (tls_context_) {
      return *tls_context_;
    }
    // Configured before it is kept, so that a failure leaves no half-set
    // context behind.
    asio::ssl::context context(asio::ssl::context::tls_client);
    context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (options_.use_system_ca_store) {
      context.set_default_verify_paths();
    }
    error_code error;
    if (!options_.extra_ca_pem.empty()) {
      context.add_certificate_authority(asio::buffer(options_.extra_ca_pem), error);
      if (error) {
        throw boost::system::system_error(error, "http::ClientOptions::extra_ca_pem is not a valid PEM certificate");
      }
    }
    if (!options_.extra_ca_file.empty()) {
      context.load_verify_file(options_.extra_ca_file, error);
      if (error) {
        throw boost::system::system_error(
            error, "cannot load http::ClientOptions::extra_ca_file '" + options_.extra_ca_file + "'");
      }
    }
    context.set_verify_mode(options_.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
    return tls_context_.emplace(std::move(context));
  }

  asio::awaitable<Response> request(ClientRequest request);
  void close_idle();
  Target const& target_of(std::string const& url, std::string const& operation);

  ClientStats stats_;
  bool closed_ = false;

 private:
  // Holds a pool slot (and usually a connection) until it is released; an
  // exception or cancellation releases it as not reusable.
  class Lease {
   public:
    Lease(State& state, HostPool& pool) : state_(&state), pool_(&pool) {}
    Lease(Lease&& other) noexcept
        : state_(other.state_), pool_(other.pool_), connection(std::move(other.connection)), reused(other.reused),
          holds_slot_(std::exchange(other.holds_slot_, false)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() { release(false); }

    void take_slot() { holds_slot_ = true; }
    void release(bool reusable) {
      if (std::exchange(holds_slot_, false)) {
        state_->release(*pool_, std::move(connection), reusable);
      }
    }

   private:
    State* state_;
    HostPool* pool_;

   public:
    ConnectionPtr connection;
    bool reused = false;

   private:
    bool holds_slot_ = false;
  };

  HostPool& pool_for(Lane lane, Target const& target);
  asio::awaitable<Lease> acquire(HostPool& pool, Target const& target, Clock::time_point deadline,
                                 std::string const& operation, bool fresh);
  asio::awaitable<ConnectionPtr> connect(Target const& target, Clock::time_point request_deadline,
                                         std::string const& operation);
  asio::awaitable<tcp::resolver::results_type> resolve(std::string const& host, std::uint16_t port,
                                                       Clock::time_point deadline, Target const& target,
                                                       std::string const& operation);
  asio::awaitable<void> open_tunnel(PooledConnection& connection, Target const& target, Clock::time_point deadline,
                                    std::string const& operation);
  asio::awaitable<void> handshake(PooledConnection& connection, Target const& target, Clock::time_point deadline,
                                  std::string const& operation);
  template <class Stream>
  asio::awaitable<Exchange> exchange(Stream& stream, PooledConnection& connection, Request const& message);
  void release(HostPool& pool, ConnectionPtr connection, bool reusable);
  void release_slot(HostPool& pool);
  void park_idle(HostPool& pool, ConnectionPtr connection);
  void arm_idle_sweep(HostPool& pool, Clock::time_point when);
  void sweep_idle(HostPool& pool);
  void drop_idle(HostPool& pool, PooledConnection* connection, bool closed_by_server);
  Request build_message(ClientRequest& request, Target const& target) const;
  static asio::awaitable<void> throw_if_cancelled();

  asio::any_io_executor executor_;
  ClientOptions options_;
  // Parsed URLs: a client of one API calls the same few URLs again and again.
  std::unordered_map<std::string, Target> targets_;
  // Created at the first https:// connection, or by the constructor when
  // ClientOptions names extra CAs.
  std::optional<asio::ssl::context> tls_context_;
  std::optional<ProxyConfig> proxy_;
  std::unordered_map<std::string, HostPool> pools_;
  std::uint64_t next_connection_id_ = 1;
};

// Returns the parsed form of `url`, which is parsed again only after the
// cache was cleared. The cache is cleared when it reaches kMaxCachedTargets.
Target const& Client::State::target_of(std::string const& url, std::string const& operation) {
  if (auto const found = targets_.find(url); found != targets_.end()) {
    return found->second;
  }
  Target target = parse_target(url, operation);
  if (targets_.size() >= kMaxCachedTargets) {
    targets_.clear();
  }
  return targets_.emplace(url, std::move(target)).first->second;
}

asio::awaitable<void> Client::State::throw_if_cancelled() {
  auto const cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
  if (cancelled != asio::cancellation_type::none) {
    throw boost::system::system_error(asio::error::operation_aborted, "http::Client::request cancelled");
  }
}

HostPool& Client::State::pool_for(Lane lane, Target const& target) {
  std::string key = lane == Lane::dedicated ? "dedicated " : "standard ";
  key += target.tls ? "https://" : "http://";
  key += target.authority;
  auto [it, inserted] = pools_.try_emplace(key);
  if (inserted) {
    it->second.key = std::move(key);
  }
  return it->second;
}

Request Client::State::build_message(ClientRequest& request, Target const& target) const {
  bool const absolute_form = proxy_ && !target.tls;
  Request message{request.method, absolute_form ? "http://" + target.authority + target.origin_form : target.origin_form,
                  11};
  message.set(Field::host, target.authority);
  if (!options_.user_agent.empty()) {
    message.set(Field::user_agent, options_.user_agent);
  }
  if (!request.content_type.empty()) {
    message.set(Field::content_type, request.content_type);
  }
  if (absolute_form && !proxy_->authorization.empty()) {
    message.set(Field::proxy_authorization, proxy_->authorization);
  }
  for (auto& [name, value] : request.headers) {
    message.set(name, value);
  }
  message.body() = std::move(request.body);
  message.keep_alive(true);
  message.prepare_payload();
  return message;
}

asio::awaitable<Response> Client::State::request(ClientRequest request) {
  auto self = shared_from_this();
  auto const start = Clock::now();
  Target const target = target_of(request.url, request.operation);
  auto const timeout = request.timeout.value_or(options_.request_timeout);
  auto const deadline = start + timeout;
  bool const idempotent = request.idempotent.value_or(is_idempotent(request.method));
  auto const operation = request.operation;
  Request const message = build_message(request, target);
  HostPool& pool = pool_for(request.lane, target);
  ++stats_.requests;

  for (int attempt = 1;; ++attempt) {
    auto lease = co_await acquire(pool, target, deadline, operation, attempt > 1);
    auto& connection = *lease.connection;
    connection.deadline_->expires_at(deadline);
    Exchange outcome;
    if (connection.tls_) {
      outcome = co_await exchange(*connection.tls_, connection, message);
    } else {
      outcome = co_await exchange(connection.socket_, connection, message);
    }
    bool const timed_out = connection.deadline_->expired();
    connection.deadline_->clear();

    if (!outcome.error) {
      lease.release(outcome.reusable);
      logger()->debug("http response host={} operation={} status={} elapsed_ms={} reused={} attempt={}",
                      target.authority, operation, outcome.response.result_int(), to_ms(Clock::now() - start),
                      lease.reused, attempt);
      co_return std::move(outcome.response);
    }

    lease.release(false);
    if (!timed_out) {
      co_await throw_if_cancelled();
    }
    auto const delivery = outcome.bytes_written == 0 ? Delivery::not_sent : Delivery::maybe_delivered;
    bool const closed_without_answer = !timed_out && !outcome.got_response_bytes && !is_parse_error(outcome.error);
    bool const retry = attempt == 1 && lease.reused && closed_without_answer &&
                       (outcome.bytes_written == 0 || idempotent) && Clock::now() < deadline;
    if (retry) {
      ++stats_.retries;
      logger()->debug("http retrying on a new connection host={} operation={} error=\"{}\" bytes_written={}",
                      target.authority, operation, outcome.error.message(), outcome.bytes_written);
      continue;
    }

    auto const stage = outcome.write_failed ? "sending the request" : "reading the response";
    if (timed_out) {
      throw HttpError(ErrorKind::timeout, delivery, target.authority, operation, outcome.error,
                      std::string("timed out while ") + stage + " after " + std::to_string(to_ms(Clock::now() - start)) +
                          " ms (timeout " + std::to_string(timeout.count()) + " ms)");
    }
    if (outcome.error == bhttp::error::body_limit) {
      throw HttpError(ErrorKind::response_too_large, delivery, target.authority, operation, outcome.error,
                      "response body larger than " + std::to_string(options_.response_body_limit) + " bytes");
    }
    if (is_parse_error(outcome.error)) {
      throw HttpError(ErrorKind::malformed_response, delivery, target.authority, operation, outcome.error,
                      "invalid HTTP response: " + outcome.error.message());
    }
    throw HttpError(ErrorKind::connection_closed, delivery, target.authority, operation, outcome.error,
                    std::string("connection lost while ") + stage + ": " + outcome.error.message() +
                        (lease.reused ? " (reused connection)" : " (new connection)"));
  }
}

namespace {

void finish_exchange(Exchange& outcome, PooledConnection& connection,
                     bhttp::response_parser<bhttp::string_body>& parser) {
  outcome.got_response_bytes = parser.got_some() || connection.buffer_.size() > 0;
  if (outcome.error) {
    return;
  }
  outcome.reusable = parser.keep_alive() && !parser.need_eof() && connection.buffer_.size() == 0;
  outcome.response = parser.release();
}

}  // namespace

template <class Stream>
asio::awaitable<Exchange> Client::State::exchange(Stream& stream, PooledConnection& connection,
                                                  Request const& message) {
  Exchange outcome;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.header_limit(kResponseHeaderLimit);
  parser.body_limit(options_.response_body_limit);
  if (message.method() == Verb::head) {
    parser.skip(true);
  }
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    if (!message.chunked()) {
      // The socket is in non-blocking mode (see connect): the request goes
      // out and the response comes in without an executor round trip for
      // each step, as far as the socket's buffers allow.
      auto const written = co_await detail::write_message(stream, message);
      outcome.bytes_written = written.bytes;
      if (written.error) {
        outcome.error = written.error;
        outcome.write_failed = true;
        co_return outcome;
      }
      outcome.error = co_await detail::read_message(stream, connection.buffer_, parser);
      finish_exchange(outcome, connection, parser);
      co_return outcome;
    }
  }
  auto [write_error, written] = co_await bhttp::async_write(stream, message, use_tuple);
  outcome.bytes_written = written;
  if (write_error) {
    outcome.error = write_error;
    outcome.write_failed = true;
    co_return outcome;
  }
  auto [read_error, read] = co_await bhttp::async_read(stream, connection.buffer_, parser, use_tuple);
  outcome.error = read_error;
  finish_exchange(outcome, connection, parser);
  co_return outcome;
}

asio::awaitable<Client::State::Lease> Client::State::acquire(HostPool& pool, Target const& target,
                                                             Clock::time_point deadline, std::string const& operation,
                                                             bool fresh) {
  Lease lease(*this, pool);

  // A retry needs a new connection: the idle ones may be as stale as the one
  // that failed, so the oldest gives up its slot if the pool is full.
  if (fresh && pool.open >= options_.max_connections_per_host && !pool.idle.empty()) {
    drop_idle(pool, pool.idle.front().get(), false);
  }

  while (!fresh && !pool.idle.empty()) {
    auto connection = std::move(pool.idle.back());
    pool.idle.pop_back();
    connection->in_idle_pool_ = false;
    if (connection->still_open()) {
      lease.take_slot();
      lease.connection = std::move(connection);
      lease.reused = true;
      ++stats_.connections_reused;
      co_return lease;
    }
    ++stats_.stale_connections_dropped;
    connection->close();
    --pool.open;
  }

  if (pool.open < options_.max_connections_per_host) {
    ++pool.open;
  } else {
    auto waiter = std::make_shared<Waiter>(executor_);
    waiter->timer.expires_at(deadline);
    pool.waiters.push_back(waiter);
    co_await waiter->timer.async_wait(use_tuple);
    if (!waiter->handed && !waiter->slot_granted) {
      std::erase(pool.waiters, waiter);
      co_await throw_if_cancelled();
      throw HttpError(ErrorKind::timeout, Delivery::not_sent, target.authority, operation, asio::error::timed_out,
                      "no connection became free before the deadline (" + std::to_string(pool.open) + " open of " +
                          std::to_string(options_.max_connections_per_host) + ", " +
                          std::to_string(pool.waiters.size()) + " other requests waiting)");
    }
    lease.take_slot();
    if (waiter->handed) {
      lease.connection = std::move(waiter->handed);
      lease.reused = true;
      ++stats_.connections_reused;
    }
    co_await throw_if_cancelled();
    if (lease.connection) {
      co_return lease;
    }
  }

  lease.take_slot();
  lease.connection = co_await connect(target, deadline, operation);
  co_return lease;
}

asio::awaitable<ConnectionPtr> Client::State::connect(Target const& target, Clock::time_point request_deadline,
                                                      std::string const& operation) {
  auto const start = Clock::now();
  auto const deadline = std::min(request_deadline, start + options_.connect_timeout);
  auto connection = std::make_shared<PooledConnection>(executor_, next_connection_id_++);
  auto const& host = proxy_ ? proxy_->host : target.host;
  auto const port = proxy_ ? proxy_->port : target.port;
  auto const destination = proxy_ ? "proxy " + proxy_->authority : target.authority;

  auto endpoints = co_await resolve(host, port, deadline, target, operation);

  connection->deadline_->expires_at(deadline);
  auto [connect_error, endpoint] = co_await asio::async_connect(connection->socket_, endpoints, use_tuple);
  if (connect_error) {
    if (connection->deadline_->expired()) {
      throw HttpError(ErrorKind::timeout, Delivery::not_sent, target.authority, operation, connect_error,
                      "connecting to " + destination + " timed out after " + std::to_string(to_ms(Clock::now() - start)) +
                          " ms");
    }
    co_await throw_if_cancelled();
    throw HttpError(ErrorKind::connect, Delivery::not_sent, target.authority, operation, connect_error,
                    "connecting to " + destination + " failed: " + connect_error.message());
  }
  error_code ignored;
  connection->socket_.set_option(tcp::no_delay(true), ignored);
  // Synchronous reads and writes then return would_block instead of
  // blocking, as exchange() expects. Asynchronous operations (and TLS,
  // which uses only those) are unaffected.
  error_code mode_error;
  connection->socket_.non_blocking(true, mode_error);
  if (mode_error) {
    throw HttpError(ErrorKind::connect, Delivery::not_sent, target.authority, operation, mode_error,
                    "connection to " + destination + " cannot enter non-blocking mode: " + mode_error.message());
  }

  if (proxy_ && target.tls) {
    co_await open_tunnel(*connection, target, deadline, operation);
  }
  if (target.tls) {
    co_await handshake(*connection, target, deadline, operation);
  }
  connection->deadline_->clear();
  ++stats_.connections_opened;
  logger()->debug("http connection opened host={} operation={} connection_id={} elapsed_ms={} proxy={}",
                  target.authority, operation, connection->id_, to_ms(Clock::now() - start), proxy_.has_value());
  co_return connection;
}

asio::awaitable<tcp::resolver::results_type> Client::State::resolve(std::string const& host, std::uint16_t port,
                                                                    Clock::time_point deadline, Target const& target,
                                                                    std::string const& operation) {
  // getaddrinfo cannot be interrupted, so the resolve keeps running after the
  // request gives up at the deadline, and its late result is dropped.
  struct Pending {
    explicit Pending(asio::any_io_executor const& executor) : timer(executor), resolver(executor) {}
    asio::steady_timer timer;
    tcp::resolver resolver;
    bool done = false;
    error_code error;
    tcp::resolver::results_type results;
  };
  auto const start = Clock::now();
  auto pending = std::make_shared<Pending>(executor_);
  pending->timer.expires_at(deadline);
  pending->resolver.async_resolve(host, std::to_string(port),
                                  [pending](error_code const& error, tcp::resolver::results_type results) {
                                    pending->done = true;
                                    pending->error = error;
                                    pending->results = std::move(results);
                                    pending->timer.cancel();
                                  });
  co_await pending->timer.async_wait(use_tuple);

  if (!pending->done) {
    co_await throw_if_cancelled();
    throw HttpError(ErrorKind::timeout, Delivery::not_sent, target.authority, operation, asio::error::timed_out,
                    "resolving " + host + " timed out after " + std::to_string(to_ms(Clock::now() - start)) + " ms");
  }
  if (pending->error) {
    throw HttpError(ErrorKind::resolve, Delivery::not_sent, target.authority, operation, pending->error,
                    "resolving " + host + " failed: " + pending->error.message());
  }
  co_return std::move(pending->results);
}

asio::awaitable<void> Client::State::open_tunnel(PooledConnection& connection, Target const& target,
                                                 Clock::time_point deadline, std::string const& operation) {
  bhttp::request<bhttp::empty_body> connect_request{Verb::connect, target.authority, 11};
  connect_request.set(Field::host, target.authority);
  if (!proxy_->authorization.empty()) {
    connect_request.set(Field::proxy_authorization, proxy_->authorization);
  }
  if (!options_.user_agent.empty()) {
    connect_request.set(Field::user_agent, options_.user_agent);
  }

  connection.deadline_->expires_at(deadline);
  auto [write_error, written] = co_await bhttp::async_write(connection.socket_, connect_request, use_tuple);
  error_code error = write_error;
  bhttp::response_parser<bhttp::empty_body> parser;
  parser.skip(true);  // a 2xx response to CONNECT has no body
  if (!error) {
    auto [read_error, read] = co_await bhttp::async_read_header(connection.socket_, connection.buffer_, parser, use_tuple);
    error = read_error;
  }
  if (error) {
    if (connection.deadline_->expired()) {
      throw HttpError(ErrorKind::timeout, Delivery::not_sent, target.authority, operation, error,
                      "CONNECT through proxy " + proxy_->authority + " timed out");
    }
    co_await throw_if_cancelled();
    throw HttpError(ErrorKind::proxy, Delivery::not_sent, target.authority, operation, error,
                    "CONNECT through proxy " + proxy_->authority + " failed: " + error.message());
  }
  auto const status = parser.get().result_int();
  if (status / 100 != 2) {
    throw HttpError(ErrorKind::proxy, Delivery::not_sent, target.authority, operation, {},
                    "proxy " + proxy_->authority + " answered CONNECT with status " + std::to_string(status));
  }
  if (connection.buffer_.size() != 0) {
    throw HttpError(ErrorKind::proxy, Delivery::not_sent, target.authority, operation, {},
                    "proxy " + proxy_->authority + " sent data after its CONNECT response");
  }
  ++stats_.proxy_tunnels;
}

asio::awaitable<void> Client::State::handshake(PooledConnection& connection, Target const& target,
                                               Clock::time_point deadline, std::string const& operation) {
  connection.tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(connection.socket_), tls_context());
  auto* const native = connection.tls_->native_handle();
  if (!target.host_is_ip) {
    // SNI: servers with several certificates pick one by this name. This is
    // SSL_set_tlsext_host_name(), a macro with an old-style cast.
    SSL_ctrl(native, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(target.host.c_str()));
  }
  if (options_.verify_peer) {
    // OpenSSL's own host check records X509_V_ERR_HOSTNAME_MISMATCH, which
    // makes the error precise. The Asio callback alone leaves "unspecified".
    if (target.host_is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), target.host.c_str());
    } else {
      SSL_set1_host(native, target.host.c_str());
    }
    connection.tls_->set_verify_callback(asio::ssl::host_name_verification(target.host));
  }

  connection.deadline_->expires_at(deadline);
  auto [error] = co_await connection.tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
  if (!error) {
    co_return;
  }
  if (connection.deadline_->expired()) {
    throw HttpError(ErrorKind::timeout, Delivery::not_sent, target.authority, operation, error,
                    "TLS handshake with " + target.authority + " timed out");
  }
  co_await throw_if_cancelled();
  auto const verify_result = SSL_get_verify_result(native);
  bool const certificate_rejected =
      error.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(error.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED;
  if (certificate_rejected) {
    std::string reason = X509_verify_cert_error_string(verify_result);
    if (verify_result == X509_V_ERR_HOSTNAME_MISMATCH || verify_result == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      reason = "the certificate does not match the host name " + target.host + " (" + reason + ")";
    }
    throw HttpError(ErrorKind::tls_certificate, Delivery::not_sent, target.authority, operation, error,
                    "certificate verification failed: " + reason);
  }
  throw HttpError(ErrorKind::tls_handshake, Delivery::not_sent, target.authority, operation, error,
                  "TLS handshake failed: " + error.message());
}

void Client::State::release(HostPool& pool, ConnectionPtr connection, bool reusable) {
  if (!connection) {
    release_slot(pool);
    return;
  }
  if (!reusable || closed_) {
    connection->close();
    release_slot(pool);
    return;
  }
  if (!pool.waiters.empty()) {
    auto waiter = std::move(pool.waiters.front());
    pool.waiters.pop_front();
    waiter->handed = std::move(connection);
    waiter->timer.cancel();
    return;
  }
  park_idle(pool, std::move(connection));
}

void Client::State::release_slot(HostPool& pool) {
  if (!pool.waiters.empty()) {
    auto waiter = std::move(pool.waiters.front());
    pool.waiters.pop_front();
    waiter->slot_granted = true;
    waiter->timer.cancel();
    return;
  }
  --pool.open;
}

void Client::State::park_idle(HostPool& pool, ConnectionPtr connection) {
  // Nothing watches an idle connection, because a watch costs an epoll_ctl
  // and a cancellation on every request. A connection the server closed is
  // found by still_open() at checkout, or by the sweep at the idle timeout.
  connection->in_idle_pool_ = true;
  connection->idle_since_ = Clock::now();
  const Clock::time_point expiry = connection->idle_since_ + options_.idle_timeout;
  pool.idle.push_back(std::move(connection));
  if (!pool.sweep_armed) {
    arm_idle_sweep(pool, expiry);
  }
}

void Client::State::arm_idle_sweep(HostPool& pool, Clock::time_point when) {
  if (!pool.sweep_timer) {
    pool.sweep_timer = std::make_unique<asio::steady_timer>(executor_);
  }
  pool.sweep_armed = true;
  pool.sweep_timer->expires_at(when);
  pool.sweep_timer->async_wait([weak = weak_from_this(), pool = &pool](error_code const& error) {
    auto self = weak.lock();
    if (!self) {
      return;
    }
    pool->sweep_armed = false;
    if (!error && !self->closed_) {
      self->sweep_idle(*pool);
    }
  });
}

// Closes the idle connections that reached the idle timeout or that the
// server closed, then waits for the next expiry. The oldest are first.
void Client::State::sweep_idle(HostPool& pool) {
  const Clock::time_point now = Clock::now();
  std::vector<PooledConnection*> expired;
  std::vector<PooledConnection*> closed;
  for (const ConnectionPtr& connection : pool.idle) {
    if (now - connection->idle_since_ >= options_.idle_timeout) {
      expired.push_back(connection.get());
    } else if (!connection->still_open()) {
      closed.push_back(connection.get());
    }
  }
  for (PooledConnection* connection : expired) {
    drop_idle(pool, connection, false);
  }
  for (PooledConnection* connection : closed) {
    drop_idle(pool, connection, true);
  }
  if (!pool.idle.empty()) {
    arm_idle_sweep(pool, pool.idle.front()->idle_since_ + options_.idle_timeout);
  }
}

void Client::State::drop_idle(HostPool& pool, PooledConnection* connection, bool closed_by_server) {
  auto const found = std::find_if(pool.idle.begin(), pool.idle.end(),
                                  [connection](ConnectionPtr const& idle) { return idle.get() == connection; });
  if (found == pool.idle.end()) {
    return;
  }
  auto owned = std::move(*found);
  pool.idle.erase(found);
  owned->in_idle_pool_ = false;
  owned->close();
  if (closed_by_server) {
    ++stats_.stale_connections_dropped;
  }
  logger()->debug("http idle connection closed pool=\"{}\" connection_id={} reason={}", pool.key, owned->id_,
                  closed_by_server ? "closed_by_server" : "idle_timeout");
  release_slot(pool);
}

void Client::State::close_idle() {
  for (auto& [key, pool] : pools_) {
    if (pool.sweep_timer) {
      pool.sweep_timer->cancel();
    }
    while (!pool.idle.empty()) {
      drop_idle(pool, pool.idle.back().get(), false);
    }
  }
}

Client::Client(asio::any_io_executor executor, ClientOptions options)
    : state_(std::make_shared<State>(std::move(executor), std::move(options))) {}

Client::~Client() {
  state_->closed_ = true;
  state_->close_idle();
}

asio::awaitable<Response> Client::request(ClientRequest request) {
  auto state = state_;
  co_return co_await state->request(std::move(request));
}

void Client::close_idle_connections() { state_->close_idle(); }

ClientStats Client::stats() const { return state_->stats_; }

}  // namespace sluice::http
