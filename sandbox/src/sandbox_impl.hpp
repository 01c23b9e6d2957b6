#pragma once

// The parts of sluice::sandbox::Sandbox shared by its source files.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <sluice/http/client.hpp>
#include <sluice/http/server.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/sandbox/sandbox.hpp>

#include <spdlog/logger.h>

namespace sluice::sandbox {

/// Wakes every coroutine waiting for a state change. Each waiter waits on
/// its own timer (bounded by its deadline); notify() cancels them all and
/// the waiters re-check their condition. Single-threaded.
class ChangeSignal {
 public:
  /// Waits until notify() or `deadline`. Cancellation: throws
  /// operation_aborted when the caller was cancelled.
  boost::asio::awaitable<void> wait_until(Instant deadline);
  void notify();

 private:
  std::unordered_set<boost::asio::steady_timer*> waiting_;
};

class Sandbox::Impl {
 public:
  Impl(boost::asio::any_io_executor executor, SandboxOptions options);
  ~Impl();

  boost::asio::awaitable<void> start();
  boost::asio::awaitable<void> stop(std::chrono::milliseconds grace);
  boost::asio::awaitable<void> wait_stopped();
  boost::asio::awaitable<bool> wait_for(std::string condition, std::chrono::milliseconds timeout);
  /// Starts stop() in the background (for POST /sandbox/shutdown).
  void request_stop();
  void notify() { changes_.notify(); }

  std::uint16_t port() const;
  std::string base_url() const;

  // HTTP entry point and the two kinds of routes.
  boost::asio::awaitable<http::Reply> serve(http::Request request, http::RequestInfo info);
  boost::asio::awaitable<http::Reply> serve_bot_api(http::Request request, Route route);
  boost::asio::awaitable<http::Reply> serve_control(http::Request request, Route route);
  boost::asio::awaitable<http::Reply> serve_wait(boost::json::object const& query);

  // Webhook delivery (webhook.cpp).
  boost::asio::awaitable<void> run_webhook_dispatcher();
  boost::asio::awaitable<void> deliver(WebhookDelivery delivery);

  // Scenario playback (player.cpp).
  boost::asio::awaitable<void> run_scenario_events();
  boost::asio::awaitable<void> run_simulation();
  /// Waits until `when`, or less when the sandbox stops.
  boost::asio::awaitable<void> sleep_until(Instant when);

  static http::Reply json_reply(unsigned status, std::string body);

  boost::asio::any_io_executor executor_;
  SandboxOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  Engine engine_;
  ChangeSignal changes_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  std::string tls_certificate_pem_;
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<http::Client> webhook_client_;
  Instant started_at_{};
  bool started_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  // Declared last so that they are destroyed first: their tasks use the
  // members above.
  runtime::TaskSet lifecycle_;
  runtime::TaskSet tasks_;
};

/// Creates a self-signed certificate and key (PEM) for "localhost" and
/// 127.0.0.1, valid for 30 days.
std::pair<std::string, std::string> make_self_signed_certificate();

}  // namespace sluice::sandbox
