#pragma once

// Webhooks: an HTTP handler that takes updates POSTed by Telegram
// (https://core.telegram.org/bots/api#setwebhook) and replies 200 only once
// the update is handled.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <sluice/http/server.hpp>
#include <sluice/updates/offset.hpp>
#include <sluice/updates/sink.hpp>

namespace sluice::telegram {
class BotApi;
}

namespace sluice::updates {

struct WebhookOptions {
  /// Value Telegram sends in X-Telegram-Bot-Api-Secret-Token (set with
  /// setWebhook): 1 to 256 characters of A-Z, a-z, 0-9, _ and -. Required.
  std::string secret_token{};
  /// Request path the handler serves; other paths get 404.
  std::string path = "/webhook";
  /// Largest accepted body in bytes; larger gets 413. Default 1 MiB.
  std::size_t body_limit = 1024 * 1024;
  /// Updates being handled at once through this handler; a request beyond
  /// it gets 429 with Retry-After, and Telegram delivers it again later.
  /// Default 256.
  std::size_t max_in_flight = 256;
  /// Value of the Retry-After header of a 429 reply. Default 1 s.
  std::chrono::seconds retry_after = std::chrono::seconds(1);
  /// How many update_ids of handled updates are remembered, so that an
  /// update Telegram delivers again (its request timed out, or the 200 was
  /// lost) gets 200 without being handled twice. 0 remembers none. Default
  /// 10,000, about 400 KiB.
  std::size_t remember_handled = 10000;
};

/// Counters of one WebhookHandler; read them on its event loop.
struct WebhookStats {
  std::uint64_t requests = 0;
  std::uint64_t handled = 0;
  std::uint64_t rejected_secret = 0;
  std::uint64_t rejected_size = 0;
  std::uint64_t rejected_overload = 0;
  std::uint64_t dead_letters = 0;
  /// Deliveries of an update already handled or being handled; none of
  /// them ran a handler.
  std::uint64_t duplicates = 0;
  /// 200 replies that carried a Bot API call.
  std::uint64_t calls_in_replies = 0;
  /// Requests being handled now.
  std::size_t in_flight = 0;
};

/// Returns whether `a` equals `b`, in time that depends only on their
/// lengths, so a wrong secret token reveals nothing through timing.
bool equal_in_constant_time(std::string_view a, std::string_view b) noexcept;

/// Serves webhook requests: checks the secret token in constant time,
/// parses the update, hands it to the sink and replies 200 once it is
/// handled, so Telegram confirms only handled updates.
///
/// A handler may put one Bot API call in the 200 reply (offer_reply), which
/// Telegram then makes, saving a request
/// (https://core.telegram.org/bots/api#making-requests-when-getting-updates).
///
/// Replies: 404 for another path, 405 for a method other than POST, 401 for
/// a missing or wrong secret token (nothing is handled), 413 for a body over
/// body_limit, 429 with Retry-After when max_in_flight updates are being
/// handled, 503 after `close()` or when the update was cancelled at
/// shutdown (Telegram retries both), and 200 for an update that does not
/// parse, after it is logged and stored as a dead letter.
///
/// Telegram delivers an update again when its request times out (a handler
/// slower than Telegram's timeout) or the 200 is lost. Such a delivery runs
/// no handler. While the update is being handled, it waits for that
/// handling and gets the same reply. After that, it gets 200 at once if the
/// update is one of the last `remember_handled`. The update_ids are kept in memory, so after
/// a restart an update whose 200 was lost is handled again.
///
/// Executor and threads: runs on `executor` (the http::Server's); not
/// thread-safe. Lifetime: the sink and the store must outlive the handler,
/// and the handler must outlive the server's connections.
class WebhookHandler {
 public:
  /// `dead_letters` may be nullptr: invalid updates are then only logged.
  /// Throws std::invalid_argument for an invalid secret token or a limit of 0.
  WebhookHandler(boost::asio::any_io_executor executor, UpdateSink& sink, WebhookOptions options,
                 OffsetStore* dead_letters = nullptr);
  ~WebhookHandler();
  WebhookHandler(const WebhookHandler&) = delete;
  WebhookHandler& operator=(const WebhookHandler&) = delete;

  /// Serves one request; pass it to http::Server as its handler:
  ///
  ///     http::Server server(executor, {.port = 8443, .body_limit = options.body_limit},
  ///                         [&](http::Request&& request, const http::RequestInfo& info) {
  ///                           return webhook.handle(std::move(request), info);
  ///                         });
  ///
  /// Cancellation: when the server cancels the request (its stop grace
  /// ended), the wait ends and the server closes the connection without a
  /// reply; the update stays with the sink.
  boost::asio::awaitable<http::Reply> handle(http::Request request, const http::RequestInfo& info);

  /// Puts `call` (a JSON object with "method" and the call's parameters) in
  /// the 200 reply to the delivery of `update_id`. Returns false and stores
  /// nothing when that update is not being handled here or its reply has a
  /// call already. The caller then makes the call itself. Telegram reports
  /// no result for a call in a reply. A repeated delivery of the update
  /// gets the same reply.
  bool offer_reply(std::int64_t update_id, std::string call);

  /// Returns whether offer_reply(update_id, ...) would store a call now.
  bool can_reply(std::int64_t update_id) const;

  /// Makes every later request get 503. Idempotent.
  void close() noexcept;

  const WebhookStats& stats() const noexcept;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

/// True when `secret` is a valid secret_token for setWebhook: 1 to 256
/// characters of A-Z, a-z, 0-9, _ and -.
bool is_valid_secret_token(std::string_view secret) noexcept;

/// Calls setWebhook with `url`, `secret_token` and `allowed_updates` (empty:
/// keep Telegram's current choice). Errors: those of BotApi::call.
boost::asio::awaitable<void> set_webhook(telegram::BotApi& api, std::string url, std::string secret_token,
                                         std::vector<std::string> allowed_updates,
                                         std::optional<std::int64_t> max_connections = std::nullopt);

/// Calls deleteWebhook; with `drop_pending_updates`, Telegram discards the
/// updates not yet delivered. Errors: those of BotApi::call.
boost::asio::awaitable<void> delete_webhook(telegram::BotApi& api, bool drop_pending_updates = false);

}  // namespace sluice::updates
