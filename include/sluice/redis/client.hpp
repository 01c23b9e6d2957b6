#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <sluice/redis/command.hpp>
#include <sluice/redis/error.hpp>
#include <sluice/redis/reply.hpp>
#include <sluice/redis/script.hpp>

namespace sluice::redis {

namespace detail {
class ClientImpl;
}

/// Settings of a `Client`. Durations are upper bounds, not estimates.
struct ClientOptions {
  /// `redis://[[user]:password@]host[:port][/db]`; AUTH and SELECT are sent
  /// on every new connection. `rediss://` (TLS) is rejected for now.
  std::string url = "redis://127.0.0.1:6379";
  /// Sent with CLIENT SETNAME on every connection (visible in CLIENT LIST);
  /// empty sends nothing. Must not contain spaces or newlines.
  std::string client_name = "sluice";
  /// Multiplexed connections for ordinary commands. Default 1: one
  /// pipelined connection already keeps a single-threaded Redis busy, and
  /// replies then follow call order across all coroutines.
  std::size_t connections = 1;
  /// Limit for one connect attempt (DNS, TCP connect, handshake). It is
  /// also how long requests wait for a connection when none is up: after
  /// the client has had no connection for this long, new requests fail at
  /// once with Errc::not_connected and the last connect error.
  std::chrono::milliseconds connect_timeout{2000};
  /// Default deadline of a command, measured from the call: waiting for a
  /// connection, queueing and the round trip together.
  std::chrono::milliseconds command_timeout{5000};
  /// A connection that has sent and received nothing for this long sends a
  /// PING, so that a dead peer is found before a request needs it.
  std::chrono::milliseconds keepalive_interval{1000};
  /// A connection that waits this long for a reply without receiving a
  /// byte is declared dead and reconnected; its requests in flight fail
  /// with Errc::connection_lost. Keep it above the slowest command you run
  /// on the multiplexed connections (blocking commands use their own).
  std::chrono::milliseconds keepalive_timeout{3000};
  /// Delay before the second reconnect attempt (the first one is
  /// immediate); it doubles per failure up to `reconnect_backoff_max`, and
  /// each delay is drawn uniformly from [delay/2, delay].
  std::chrono::milliseconds reconnect_backoff_min{50};
  /// Largest reconnect delay; it bounds how long after a server comes back
  /// the client reconnects.
  std::chrono::milliseconds reconnect_backoff_max{500};
  /// Commands queued or in flight per connection. When every connection
  /// is full, new requests wait (within their deadline) until replies free
  /// space. A single pipeline larger than this is admitted when its
  /// connection is otherwise empty.
  std::size_t max_pending = 4096;
  /// Dedicated connections for `execute_blocking` (kept open for reuse);
  /// more concurrent blocking calls wait for one within their deadline.
  std::size_t max_blocking_connections = 4;
};

/// Counters and gauges of one client, for metrics. Counters only grow.
struct ClientStats {
  /// Commands written to a socket (keepalive PINGs excluded).
  std::uint64_t commands_sent = 0;
  /// Replies read, including those of abandoned commands and PINGs.
  std::uint64_t replies_received = 0;
  /// Replies of kind `ReplyKind::error`.
  std::uint64_t error_replies = 0;
  /// Requests failed with Errc::timeout.
  std::uint64_t timeouts = 0;
  /// Requests whose caller was cancelled before the reply arrived.
  std::uint64_t cancellations = 0;
  /// Requests failed with Errc::connection_lost.
  std::uint64_t connection_lost = 0;
  /// Requests failed with Errc::not_connected.
  std::uint64_t not_connected = 0;
  /// Connections established (first connects and reconnects).
  std::uint64_t connects = 0;
  /// Connections established after an earlier one in the same slot died.
  std::uint64_t reconnects = 0;
  /// Failed connect attempts.
  std::uint64_t connect_failures = 0;
  /// Keepalive PINGs sent.
  std::uint64_t keepalive_pings = 0;

  /// Multiplexed connections currently up.
  std::size_t connections_up = 0;
  /// Commands written and waiting for their reply (abandoned ones included).
  std::size_t in_flight = 0;
  /// Commands on a connection but not written yet.
  std::size_t queued = 0;
  /// Requests waiting for a connection to come up or for free capacity.
  std::size_t waiting = 0;
  /// Dedicated connections for blocking commands, idle or in use.
  std::size_t blocking_connections = 0;
};

/// When `Client::set` stores the value.
enum class SetCondition : std::uint8_t {
  always,
  /// NX: only if the key does not exist.
  if_not_exists,
  /// XX: only if the key exists.
  if_exists,
};

/// Options of `Client::set`. Trivially destructible on purpose, so a
/// default argument in a `co_await` expression is safe with g++ 12.
struct SetOptions {
  /// Time to live (sent as PX); zero means no expiry.
  std::chrono::milliseconds expire{0};
  SetCondition condition = SetCondition::always;
  /// KEEPTTL: keep the current time to live of an existing key. Ignored
  /// when `expire` is set.
  bool keep_ttl = false;
};
static_assert(std::is_trivially_destructible_v<SetOptions>);

/// One entry of a Redis stream.
struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
};

/// Options of `Client::xreadgroup`. The strings must outlive the call.
struct ReadGroupOptions {
  std::string_view group;
  std::string_view consumer;
  /// COUNT: most entries returned.
  std::size_t count = 16;
  /// BLOCK: how long the server waits for new entries. Zero does not block
  /// (and never sends BLOCK 0, which would wait forever).
  std::chrono::milliseconds block{0};
  /// NOACK: do not add the entries to the pending entries list.
  bool no_ack = false;
  /// Read entries after this id; ">" reads entries never delivered to
  /// the group, "0" re-reads this consumer's pending entries.
  std::string_view id = ">";
};
static_assert(std::is_trivially_destructible_v<ReadGroupOptions>);

/// Redis client: RESP2 over a few multiplexed TCP connections, with
/// automatic pipelining, reconnects and keepalive.
///
/// Every command is queued on the least loaded connection that is up.
/// Each connection writes everything queued while its previous write was
/// in flight in one write, and matches replies to requests in order.
/// Blocking commands (`execute_blocking`, `xreadgroup` with `block`) use a
/// separate pool of dedicated connections, and pub/sub uses `Subscriber`,
/// so neither stalls the multiplexed connections.
///
/// Threading: not thread-safe. Create the client and call every member
/// from coroutines running on `executor` (one thread, as with an
/// io_context run by one thread). The executor also runs the background
/// connection loops, which start in the constructor.
///
/// Lifetime: call `co_await close()` before destroying the client. The
/// destructor only signals the loops to stop; they unwind on the
/// executor afterwards, so the io_context must keep running (or be
/// destroyed, which destroys them) after the client is gone. Operations in
/// progress keep the client's state alive, so destroying the `Client`
/// object while they run is safe; they then fail with Errc::closed.
///
/// Every operation below:
/// - deadline: `options().command_timeout` unless a timeout is passed;
///   expiry throws Error(Errc::timeout);
/// - cancellation (terminal, through the awaiting coroutine's
///   cancellation slot): a request not yet written is dropped and never
///   sent; a written one is abandoned, its reply still read and discarded
///   so later replies stay matched. Either way the call throws
///   boost::system::system_error(operation_aborted);
/// - ordering: commands sent from one connection run in call order; with
///   several connections, concurrent calls may run in any order (a
///   coroutine that awaits each call still sees its own calls in order);
/// - errors: Error(Errc::connection_lost) when the connection died after
///   the request was written (it may have been executed and is never
///   re-sent); Error(Errc::not_connected) with the last connect error when
///   no connection came up in time; Error(Errc::closed) after `close`.
///   `execute`, `command` and `pipeline` return Redis error replies as
///   `Reply` values; the typed wrappers throw ServerError for them;
/// - arguments passed by reference or view (`std::string_view`, `std::span`,
///   `const Arguments&`) must stay valid until the call completes. Await
///   each call in the expression that makes it.
class Client {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Throws Error(Errc::invalid_url) for a bad URL and
  /// std::invalid_argument for other invalid options.
  Client(executor_type executor, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  executor_type get_executor() const noexcept;
  const ClientOptions& options() const noexcept;
  ClientStats stats() const noexcept;

  /// Sends one command and returns its reply; error replies are returned,
  /// not thrown.
  boost::asio::awaitable<Reply> execute(Command command);
  boost::asio::awaitable<Reply> execute(Command command, std::chrono::milliseconds timeout);

  /// `co_await client.command("SET", key, value, "EX", 60)`: builds a
  /// Command from the values (see `Arguments::arg` for the formatting) and
  /// executes it.
  template <typename... Values>
  boost::asio::awaitable<Reply> command(std::string_view name, const Values&... values) {
    return execute(Command(name, values...));
  }

  /// Sends the commands back to back on one connection and returns their
  /// replies in order (error replies included). Other requests may be
  /// interleaved on the server between them; use `transaction` to prevent
  /// that. An empty list returns at once.
  boost::asio::awaitable<std::vector<Reply>> pipeline(std::vector<Command> commands);
  boost::asio::awaitable<std::vector<Reply>> pipeline(std::vector<Command> commands,
                                                      std::chrono::milliseconds timeout);

  /// Runs the commands atomically as MULTI, commands..., EXEC, written in
  /// one piece on one connection, and returns EXEC's replies (one per
  /// command; a command that failed at run time yields an error reply).
  /// Throws ServerError if the server rejected the transaction (EXECABORT,
  /// for example for an unknown command). WATCH is not supported on the
  /// shared connections.
  boost::asio::awaitable<std::vector<Reply>> transaction(std::vector<Command> commands);

  /// Sends a command that may block on the server (BLPOP, BRPOPLPUSH,
  /// XREADGROUP ... BLOCK, WAIT) on a dedicated connection from a small
  /// pool, so that the multiplexed connections never wait behind it.
  /// `timeout` is the client-side deadline and must exceed the command's
  /// own timeout. On timeout or cancellation the dedicated connection is
  /// closed, not reused.
  boost::asio::awaitable<Reply> execute_blocking(Command command, std::chrono::milliseconds timeout);

  /// PING; throws ServerError if the reply is an error.
  boost::asio::awaitable<void> ping();
  /// GET: nullopt when the key does not exist.
  boost::asio::awaitable<std::optional<std::string>> get(std::string_view key);
  /// SET with optional PX, NX/XX and KEEPTTL. Returns false when NX or XX
  /// prevented the write.
  boost::asio::awaitable<bool> set(std::string_view key, std::string_view value, SetOptions options = {});
  /// DEL: returns the number of keys removed.
  boost::asio::awaitable<std::int64_t> del(std::string_view key);
  boost::asio::awaitable<std::int64_t> del(std::span<const std::string> keys);
  /// INCRBY: returns the new value.
  boost::asio::awaitable<std::int64_t> incr(std::string_view key, std::int64_t by = 1);
  /// PEXPIRE: returns false when the key does not exist.
  boost::asio::awaitable<bool> expire(std::string_view key, std::chrono::milliseconds ttl);
  /// HGET: nullopt when the key or the field does not exist.
  boost::asio::awaitable<std::optional<std::string>> hget(std::string_view key, std::string_view field);
  /// HSET of one field: returns 1 if the field is new, 0 if it was updated.
  boost::asio::awaitable<std::int64_t> hset(std::string_view key, std::string_view field, std::string_view value);
  /// PUBLISH: returns the number of subscribers that received the message.
  boost::asio::awaitable<std::int64_t> publish(std::string_view channel, std::string_view message);

  /// Runs `script` with EVALSHA, and with EVAL (which also loads it) when
  /// the server answers NOSCRIPT. `keys` become KEYS, `args` become ARGV.
  /// Returns the script's reply; a script error is an error reply.
  boost::asio::awaitable<Reply> eval(const Script& script, const Arguments& keys, const Arguments& args);
  /// EVALSHA with a digest; error replies (NOSCRIPT too) are returned.
  boost::asio::awaitable<Reply> evalsha(std::string_view sha1, const Arguments& keys, const Arguments& args);

  /// XADD key [MAXLEN ~ max_length] * field value ...: returns the new
  /// entry's id. `max_length` zero does not trim.
  boost::asio::awaitable<std::string> xadd(std::string_view key,
                                           std::span<const std::pair<std::string, std::string>> fields,
                                           std::size_t max_length = 0);
  /// XREADGROUP on one stream. Returns no entries when none arrived within
  /// `options.block`. With `block` above zero it runs on a dedicated
  /// connection (like `execute_blocking`) with a client deadline of
  /// `block + command_timeout`.
  boost::asio::awaitable<std::vector<StreamEntry>> xreadgroup(std::string_view key, ReadGroupOptions options);
  /// XACK: returns the number of entries acknowledged.
  boost::asio::awaitable<std::int64_t> xack(std::string_view key, std::string_view group,
                                            std::span<const std::string> ids);

  /// Shuts the client down in stages: new requests fail with
  /// Errc::closed at once; requests already on a connection get up to
  /// `drain_timeout` to complete; then every connection is closed (requests
  /// still in flight fail with Errc::closed) and the background loops are
  /// awaited. Idempotent. Cancellation: stops waiting for the drain early.
  boost::asio::awaitable<void> close(std::chrono::milliseconds drain_timeout = std::chrono::seconds(1));

 private:
  std::shared_ptr<detail::ClientImpl> impl_;
};

}  // namespace sluice::redis
