#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <sluice/sandbox/engine.hpp>
#include <sluice/sandbox/scenario.hpp>

namespace sluice::sandbox {

struct SandboxOptions {
  /// Address to listen on (IPv4 or IPv6 literal).
  std::string address = "127.0.0.1";
  /// Port to listen on; 0 picks an ephemeral port (read it with port()).
  std::uint16_t port = 0;
  EngineOptions engine;
  /// Scenario to play after start(): its users and chats are added at once,
  /// its events and simulated users run on timers. Its settings (bot, flood,
  /// faults, webhook) replace those of `engine`.
  std::optional<Scenario> scenario;
  /// PEM files for HTTPS; both empty serves plain HTTP.
  std::string tls_certificate_file;
  std::string tls_private_key_file;
  /// Serve HTTPS with a self-signed certificate for "localhost" and
  /// 127.0.0.1 made at start (read it with tls_certificate_pem()). Ignored
  /// when certificate files are given.
  bool tls_self_signed = false;
  /// Largest request body in bytes. Telegram accepts uploads of up to 50 MB
  /// from bots.
  std::size_t body_limit = 50 * 1024 * 1024;
  /// Verify the certificate of HTTPS webhooks (Telegram does). Turn off for
  /// bots that serve a self-signed certificate in tests.
  bool webhook_verify_peer = true;
  /// Extra CA certificates (PEM) trusted for HTTPS webhooks.
  std::string webhook_ca_pem;
};

/// A local Bot API server with Telegram's behaviour, for tests, demos and
/// benchmarks: an HTTP server around an Engine, plus webhook delivery,
/// scenario playback and the control API under /sandbox/.
///
/// Example (inside a coroutine on a single-threaded io_context):
///   Sandbox sandbox(co_await asio::this_coro::executor, {});
///   co_await sandbox.start();
///   auto url = sandbox.base_url();      // "http://127.0.0.1:<port>"
///   ...                                 // the bot calls url + "/bot<token>/getMe"
///   co_await sandbox.stop();
///
/// Executor: everything runs on the executor given to the constructor, which
/// must belong to a single-threaded io_context. Not thread-safe: call every
/// member on that executor.
///
/// Lifetimes: `stop()` must complete before the Sandbox is destroyed if the
/// io_context keeps running; destroying a running sandbox closes its
/// sockets and abandons its tasks. Destroy it before its io_context.
class Sandbox {
 public:
  Sandbox(boost::asio::any_io_executor executor, SandboxOptions options);
  ~Sandbox();
  Sandbox(Sandbox const&) = delete;
  Sandbox& operator=(Sandbox const&) = delete;

  /// Listens, then starts serving, webhook delivery and the scenario in the
  /// background. Returns once port() is valid. Throws
  /// boost::system::system_error if the address cannot be bound, and
  /// std::runtime_error if the TLS files cannot be loaded. Call once.
  boost::asio::awaitable<void> start();

  /// Stops gracefully: closes the listener, lets requests in progress finish
  /// for up to `grace` (waiting long polls then answer at once), stops
  /// webhook delivery and the scenario, and returns when all of it has
  /// ended. Idempotent. Cancellation: cancelling the caller ends the wait
  /// early; the stop continues in the background.
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

  /// Waits until the sandbox has stopped, through stop() or a
  /// POST /sandbox/shutdown. Cancellation: ends the wait with
  /// operation_aborted.
  boost::asio::awaitable<void> wait_stopped();

  std::uint16_t port() const;
  /// Returns "http://127.0.0.1:<port>" (https with TLS), the base URL a bot
  /// uses instead of https://api.telegram.org.
  std::string base_url() const;
  /// Returns the self-signed certificate in PEM when tls_self_signed is on.
  std::string const& tls_certificate_pem() const;

  Engine& engine();

  /// Queues a text message from a user (see Engine::push_user_message) and
  /// wakes waiting long polls and webhook delivery.
  std::int64_t push_message(std::int64_t user_id, std::int64_t chat_id, std::string_view text);
  /// Queues a raw update (see Engine::push_update) and wakes waiters.
  std::optional<std::int64_t> push_update(boost::json::object update);
  /// Wakes long polls, webhook delivery and condition waits after a change
  /// made directly on engine().
  void notify();

  /// Waits until `condition` (see Engine::evaluate_condition) is true or
  /// `timeout` passes, and returns whether it is true. Cancellation: throws
  /// operation_aborted. Throws std::invalid_argument for a bad condition.
  boost::asio::awaitable<bool> wait_for(std::string condition, std::chrono::milliseconds timeout);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::sandbox
