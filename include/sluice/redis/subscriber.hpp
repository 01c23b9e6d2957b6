#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::redis {

namespace detail {
class SubscriberImpl;
}

/// Settings of a `Subscriber`; the connection settings mean what they mean
/// in `ClientOptions`.
struct SubscriberOptions {
  /// `redis://[[user]:password@]host[:port][/db]`.
  std::string url = "redis://127.0.0.1:6379";
  /// Sent with CLIENT SETNAME; empty sends nothing.
  std::string client_name = "sluice-subscriber";
  std::chrono::milliseconds connect_timeout{2000};
  /// How long `subscribe` and the other calls wait for the server's
  /// confirmation.
  std::chrono::milliseconds command_timeout{5000};
  /// PING after this long without traffic.
  std::chrono::milliseconds keepalive_interval{1000};
  /// Reconnect when a PING stays unanswered this long.
  std::chrono::milliseconds keepalive_timeout{3000};
  std::chrono::milliseconds reconnect_backoff_min{50};
  std::chrono::milliseconds reconnect_backoff_max{500};
  /// Messages kept until `next_message` takes them. When the buffer is
  /// full the subscriber stops reading from the socket, so the server
  /// buffers instead (and disconnects the subscriber once its
  /// client-output-buffer-limit for pubsub is exceeded).
  std::size_t max_buffered_messages = 10000;
};

/// One pub/sub message.
struct Message {
  std::string channel;
  std::string payload;
  /// The pattern that matched, for messages received through
  /// `psubscribe`; empty otherwise.
  std::string pattern;
};

/// Counters of one subscriber.
struct SubscriberStats {
  std::uint64_t messages_received = 0;
  std::uint64_t connects = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t connect_failures = 0;
  std::size_t buffered_messages = 0;
  std::size_t channels = 0;
  std::size_t patterns = 0;
  bool connected = false;
};

/// Receives pub/sub messages on its own connection (RESP2 puts a
/// subscribed connection in a mode where it cannot run other commands).
/// Publish with `Client::publish`.
///
/// Delivery is at most once, as in Redis: after a reconnect the subscriber
/// subscribes again to every channel and pattern, and messages published
/// while it was disconnected are lost.
///
/// Threading and lifetime as for `Client`: one executor, call `close()`
/// before destroying it. Every call below throws Error(Errc::closed) after
/// `close`, and boost::system::system_error(operation_aborted) when the
/// awaiting coroutine is cancelled (the subscription change itself is
/// still sent).
class Subscriber {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Starts connecting at once. Throws like `Client`'s constructor.
  Subscriber(executor_type executor, SubscriberOptions options);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  /// Subscribes to the channels and waits until the server confirmed each
  /// one, so a message published after this returns is delivered. Throws
  /// Error(Errc::timeout) when the confirmations do not arrive within
  /// `command_timeout` (for example while the server is down); the
  /// subscriber keeps trying and subscribes once it is connected.
  boost::asio::awaitable<void> subscribe(std::vector<std::string> channels);
  /// Like `subscribe`, for glob-style patterns (PSUBSCRIBE).
  boost::asio::awaitable<void> psubscribe(std::vector<std::string> patterns);
  /// Unsubscribes and waits for the confirmations (at once when
  /// disconnected). Messages already buffered are still delivered.
  boost::asio::awaitable<void> unsubscribe(std::vector<std::string> channels);
  boost::asio::awaitable<void> punsubscribe(std::vector<std::string> patterns);

  /// Returns the next message, in the order the server sent them, waiting
  /// as long as needed. Each message goes to one caller. Cancellation loses
  /// no message.
  boost::asio::awaitable<Message> next_message();
  /// Like `next_message()`, but returns nullopt after `timeout`.
  boost::asio::awaitable<std::optional<Message>> next_message(std::chrono::milliseconds timeout);

  SubscriberStats stats() const noexcept;

  /// Closes the connection and waits for the background loop to end;
  /// waiting `next_message` calls fail with Errc::closed. Idempotent.
  boost::asio::awaitable<void> close();

 private:
  std::shared_ptr<detail::SubscriberImpl> impl_;
};

}  // namespace sluice::redis
