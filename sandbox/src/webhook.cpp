// Sandbox: POSTing updates to the bot's webhook.

#include <charconv>

#include <boost/asio/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>

#include <sluice/http/error.hpp>

#include "engine_internal.hpp"
#include "sandbox_impl.hpp"

namespace sluice::sandbox {
namespace asio = boost::asio;

namespace {

// Returns Telegram's wording of a webhook failure, as
// getWebhookInfo.last_error_message shows it.
std::string describe_failure(http::HttpError const& error) {
  switch (error.kind()) {
    case http::ErrorKind::resolve:
      return "Failed to resolve host: Name or service not known";
    case http::ErrorKind::connect:
      if (error.cause() == asio::error::connection_refused) {
        return "Connection refused";
      }
      return "Connection timed out";
    case http::ErrorKind::tls_handshake:
    case http::ErrorKind::tls_certificate:
      return "SSL error {" + error.cause().message() + "}";
    case http::ErrorKind::timeout:
      return "Read timeout expired";
    case http::ErrorKind::connection_closed:
      return "Webhook connection closed";
    case http::ErrorKind::malformed_response:
    case http::ErrorKind::response_too_large:
      return "Wrong response from the webhook: " + std::string(http::to_string(error.kind()));
    case http::ErrorKind::invalid_request:
    case http::ErrorKind::proxy:
      break;
  }
  return "Failed to connect: " + std::string(error.what());
}

std::int64_t retry_after_seconds(http::Response const& response) {
  auto it = response.find(boost::beast::http::field::retry_after);
  if (it == response.end()) {
    return 0;
  }
  std::int64_t seconds = 0;
  auto value = it->value();
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc{} || seconds < 0) {
    return 0;
  }
  (void)ptr;
  return seconds;
}

}  // namespace

asio::awaitable<void> Sandbox::Impl::run_webhook_dispatcher() {
  while (!stopping_) {
    auto const now = Clock::now();
    while (auto delivery = engine_.next_webhook_delivery(now)) {
      tasks_.spawn("sandbox-webhook-delivery", deliver(std::move(*delivery)));
    }
    auto const wakeup = engine_.next_webhook_wakeup().value_or(Instant::max());
    co_await changes_.wait_until(wakeup);
  }
}

asio::awaitable<void> Sandbox::Impl::deliver(WebhookDelivery delivery) {
  http::ClientRequest request;
  request.method = http::Verb::post;
  request.url = delivery.url;
  request.body = delivery.body;
  request.content_type = "application/json";
  if (!delivery.secret_token.empty()) {
    request.headers.emplace_back("X-Telegram-Bot-Api-Secret-Token", delivery.secret_token);
  }
  request.timeout = engine_.webhook_options().request_timeout;
  request.operation = "webhook";
  request.idempotent = false;

  // Made on first use: loading the system CA store takes a noticeable time
  // and most sandboxes never see a webhook.
  if (!webhook_client_) {
    http::ClientOptions client_options;
    client_options.max_connections_per_host = 100;
    client_options.verify_peer = options_.webhook_verify_peer;
    client_options.extra_ca_pem = options_.webhook_ca_pem;
    client_options.user_agent = {};
    client_options.request_timeout = engine_.webhook_options().request_timeout;
    webhook_client_ = std::make_unique<http::Client>(executor_, client_options);
  }

  WebhookResult result;
  std::optional<http::Response> response;
  try {
    response = co_await webhook_client_->request(std::move(request));
  } catch (http::HttpError const& error) {
    result.error = describe_failure(error);
    log_->debug("webhook delivery failed update_id={} error={}", delivery.update_id, error.what());
  }

  if (response) {
    auto const status = response->result_int();
    if (status >= 200 && status <= 299) {
      result.ok = true;
    } else {
      auto reason = response->reason();
      result.error = "Wrong response from the webhook: " + std::to_string(status) + " " +
                     std::string(reason.data(), reason.size());
      result.retry_after = retry_after_seconds(*response);
    }
  }
  engine_.finish_webhook_delivery(delivery, result, Clock::now());

  // A bot may reply to a webhook with a method call in the response body
  // (https://core.telegram.org/bots/api#making-requests-when-getting-updates).
  // Telegram runs it and discards its result.
  if (result.ok && !response->body().empty()) {
    boost::system::error_code ec;
    auto body = boost::json::parse(response->body(), ec);
    if (!ec && body.is_object()) {
      auto const* method = body.get_object().if_contains("method");
      if (method != nullptr && method->is_string()) {
        auto const name = ascii_lower(method->get_string());
        if (!name.starts_with("get") && name != "setwebhook" && name != "deletewebhook" && name != "close" &&
            name != "logout") {
          ApiRequest call;
          call.token = engine_.bot().token;
          call.method = std::string(method->get_string());
          call.params = std::move(body.get_object());
          call.params.erase("method");
          engine_.handle(std::move(call), Clock::now());
        }
      }
    }
  }
  notify();
}

}  // namespace sluice::sandbox
