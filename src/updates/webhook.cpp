#include <sluice/updates/webhook.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <sluice/runtime/logging.hpp>
#include <sluice/telegram/bot_api.hpp>
#include <sluice/telegram/update.hpp>

namespace sluice::updates {

namespace {

// Telegram's limit for secret_token (https://core.telegram.org/bots/api#setwebhook).
constexpr std::size_t kMaxSecretLength = 256;

}  // namespace

bool is_valid_secret_token(std::string_view secret) noexcept {
  if (secret.empty() || secret.size() > kMaxSecretLength) {
    return false;
  }
  for (char c : secret) {
    const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                         c == '_' || c == '-';
    if (!allowed) {
      return false;
    }
  }
  return true;
}

namespace {

http::Reply text_reply(http::Status status, std::string body) {
  http::Reply reply;
  reply.response.result(status);
  reply.response.set(http::Field::content_type, "text/plain");
  reply.response.body() = std::move(body);
  reply.response.prepare_payload();
  return reply;
}

// Set by the update's HandledCallback, or when the sink rejected the update.
// Wakes every request that waits for the update.
struct HandledSignal {
  explicit HandledSignal(const boost::asio::any_io_executor& executor)
      : timer(executor, std::chrono::steady_clock::time_point::max()) {}
  boost::asio::steady_timer timer;
  bool handled = false;
  bool rejected = false;
  // A Bot API call to send in the 200 reply, as JSON; empty for none.
  std::string reply_call;
};

// The 200 reply to a handled update: empty, or carrying its call.
http::Reply handled_reply(const std::string& reply_call) {
  if (reply_call.empty()) {
    return text_reply(http::Status::ok, "");
  }
  http::Reply reply;
  reply.response.result(http::Status::ok);
  reply.response.set(http::Field::content_type, "application/json");
  reply.response.body() = reply_call;
  reply.response.prepare_payload();
  return reply;
}

// Waits until `signal` is set or the request is cancelled.
boost::asio::awaitable<void> wait_for(HandledSignal& signal) {
  while (!signal.handled && !signal.rejected) {
    co_await signal.timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    const auto state = co_await boost::asio::this_coro::cancellation_state;
    if (state.cancelled() != boost::asio::cancellation_type::none) {
      break;
    }
  }
}

// The last `capacity` update_ids added, oldest dropped first, each with the
// call of its 200 reply (empty for none).
class RecentIds {
 public:
  explicit RecentIds(std::size_t capacity) : capacity_(capacity) {}

  bool contains(std::int64_t id) const { return ids_.contains(id); }

  void add(std::int64_t id, std::string reply_call) {
    if (capacity_ == 0 || !ids_.emplace(id, std::move(reply_call)).second) {
      return;
    }
    order_.push_back(id);
    if (order_.size() > capacity_) {
      ids_.erase(order_.front());
      order_.pop_front();
    }
  }

  // The call of the update's reply; empty when none or not remembered.
  std::string reply_call(std::int64_t id) const {
    const auto found = ids_.find(id);
    return found == ids_.end() ? std::string() : found->second;
  }

 private:
  std::size_t capacity_;
  std::deque<std::int64_t> order_;
  std::unordered_map<std::int64_t, std::string> ids_;
};

}  // namespace

bool equal_in_constant_time(std::string_view a, std::string_view b) noexcept {
  // Every byte of the longer input is read; the lengths are compared last.
  const std::size_t length = std::max(a.size(), b.size());
  unsigned difference = a.size() == b.size() ? 0U : 1U;
  for (std::size_t i = 0; i < length; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    difference |= static_cast<unsigned>(x ^ y);
  }
  return difference == 0;
}

class WebhookHandler::Impl : public std::enable_shared_from_this<WebhookHandler::Impl> {
 public:
  Impl(boost::asio::any_io_executor executor, UpdateSink& sink, WebhookOptions options,
       OffsetStore* dead_letters)
      : executor_(std::move(executor)),
        sink_(sink),
        options_(std::move(options)),
        dead_letters_(dead_letters),
        logger_(runtime::module_logger("sluice.updates")),
        recent_(options_.remember_handled) {
    if (!is_valid_secret_token(options_.secret_token)) {
      throw std::invalid_argument(
          "WebhookOptions::secret_token must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -");
    }
    if (options_.max_in_flight == 0 || options_.body_limit == 0) {
      throw std::invalid_argument("WebhookOptions: max_in_flight and body_limit must be at least 1");
    }
  }

  boost::asio::awaitable<http::Reply> handle(http::Request request);
  boost::asio::awaitable<http::Reply> handle_update(telegram::Update update);
  boost::asio::awaitable<http::Reply> join(std::int64_t update_id);

  boost::asio::any_io_executor executor_;
  UpdateSink& sink_;
  WebhookOptions options_;
  OffsetStore* dead_letters_;
  std::shared_ptr<spdlog::logger> logger_;
  WebhookStats stats_;
  bool closed_ = false;
  // Updates taken by the sink and not yet handled, by update_id.
  std::unordered_map<std::int64_t, std::shared_ptr<HandledSignal>> in_progress_;
  RecentIds recent_;
};

boost::asio::awaitable<http::Reply> WebhookHandler::Impl::handle(http::Request request) {
  ++stats_.requests;
  const std::string_view target(request.target().data(), request.target().size());
  if (target != options_.path) {
    co_return text_reply(http::Status::not_found, "not found\n");
  }
  if (request.method() != http::Verb::post) {
    co_return text_reply(http::Status::method_not_allowed, "use POST\n");
  }
  const auto secret = request.find("X-Telegram-Bot-Api-Secret-Token");
  std::string_view given;
  if (secret != request.end()) {
    given = std::string_view(secret->value().data(), secret->value().size());
  }
  if (!equal_in_constant_time(given, options_.secret_token)) {
    ++stats_.rejected_secret;
    logger_->warn("webhook request rejected: missing or wrong secret token");
    co_return text_reply(http::Status::unauthorized, "unauthorized\n");
  }
  if (request.body().size() > options_.body_limit) {
    ++stats_.rejected_size;
    co_return text_reply(http::Status::payload_too_large, "body too large\n");
  }
  if (closed_) {
    co_return text_reply(http::Status::service_unavailable, "shutting down\n");
  }
  if (stats_.in_flight >= options_.max_in_flight) {
    ++stats_.rejected_overload;
    http::Reply reply = text_reply(http::Status::too_many_requests, "too many updates in progress\n");
    reply.response.set(http::Field::retry_after, std::to_string(options_.retry_after.count()));
    co_return reply;
  }

  telegram::Update update;
  std::optional<telegram::ParseError> error = telegram::try_parse_json(request.body(), update);
  if (error) {
    ++stats_.dead_letters;
    logger_->error("webhook update is invalid and stored as a dead letter error=\"{}\"", error->what());
    if (dead_letters_ != nullptr) {
      std::optional<std::int64_t> update_id;
      boost::system::error_code parse_error;
      boost::json::value json = boost::json::parse(request.body(), parse_error);
      if (!parse_error && json.is_object()) {
        if (const auto* id = json.as_object().if_contains("update_id"); id != nullptr && id->is_int64()) {
          update_id = id->as_int64();
        }
      }
      DeadLetter letter{.update_id = update_id, .raw_json = request.body(), .error = error->what()};
      co_await dead_letters_->add_dead_letter(std::move(letter));
    }
    co_return text_reply(http::Status::ok, "");
  }

  const std::int64_t update_id = update.update_id;
  if (recent_.contains(update_id) || in_progress_.contains(update_id)) {
    ++stats_.duplicates;
    logger_->info("webhook update delivered again; not handled twice update_id={}", update_id);
    co_return co_await join(update_id);
  }
  co_return co_await handle_update(std::move(update));
}

boost::asio::awaitable<http::Reply> WebhookHandler::Impl::handle_update(telegram::Update update) {
  ++stats_.in_flight;
  const std::int64_t update_id = update.update_id;
  auto signal = std::make_shared<HandledSignal>(executor_);
  in_progress_.emplace(update_id, signal);
  std::weak_ptr<Impl> self = weak_from_this();
  HandledCallback on_handled = [signal, self](std::int64_t id) {
    signal->handled = true;
    signal->timer.cancel();
    if (auto impl = self.lock()) {
      impl->in_progress_.erase(id);
      // A delivery after this one gets the same call: Telegram ignores the
      // reply to a delivery that timed out.
      impl->recent_.add(id, signal->reply_call);
    }
  };
  std::exception_ptr failure;
  try {
    co_await sink_.submit(std::move(update), std::move(on_handled));
  } catch (...) {
    // The sink did not take the update: a later delivery may handle it.
    failure = std::current_exception();
    signal->rejected = true;
    signal->timer.cancel();
    in_progress_.erase(update_id);
  }
  if (!failure) {
    try {
      co_await wait_for(*signal);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  --stats_.in_flight;
  if (failure || !signal->handled) {
    logger_->warn("webhook update not handled; Telegram will deliver it again update_id={}", update_id);
    if (failure) {
      std::rethrow_exception(failure);
    }
    co_return text_reply(http::Status::service_unavailable, "not handled\n");
  }
  ++stats_.handled;
  if (!signal->reply_call.empty()) {
    ++stats_.calls_in_replies;
  }
  co_return handled_reply(signal->reply_call);
}

// Replies to a delivery of an update that was handled, or is being handled,
// once that handling is over, with the reply the first delivery got.
boost::asio::awaitable<http::Reply> WebhookHandler::Impl::join(std::int64_t update_id) {
  const auto found = in_progress_.find(update_id);
  if (found == in_progress_.end()) {
    co_return handled_reply(recent_.reply_call(update_id));
  }
  std::shared_ptr<HandledSignal> signal = found->second;
  co_await wait_for(*signal);
  if (!signal->handled) {
    co_return text_reply(http::Status::service_unavailable, "not handled\n");
  }
  co_return handled_reply(signal->reply_call);
}

WebhookHandler::WebhookHandler(boost::asio::any_io_executor executor, UpdateSink& sink,
                               WebhookOptions options, OffsetStore* dead_letters)
    : impl_(std::make_shared<Impl>(std::move(executor), sink, std::move(options), dead_letters)) {}

WebhookHandler::~WebhookHandler() = default;

boost::asio::awaitable<http::Reply> WebhookHandler::handle(http::Request request,
                                                           const http::RequestInfo& /*info*/) {
  // The Impl is kept alive by the request's coroutine frame.
  std::shared_ptr<Impl> impl = impl_;
  http::Reply reply = co_await impl->handle(std::move(request));
  co_return reply;
}

bool WebhookHandler::offer_reply(std::int64_t update_id, std::string call) {
  if (!can_reply(update_id)) {
    return false;
  }
  impl_->in_progress_.at(update_id)->reply_call = std::move(call);
  return true;
}

bool WebhookHandler::can_reply(std::int64_t update_id) const {
  const auto found = impl_->in_progress_.find(update_id);
  return found != impl_->in_progress_.end() && !found->second->handled && found->second->reply_call.empty();
}

void WebhookHandler::close() noexcept { impl_->closed_ = true; }

const WebhookStats& WebhookHandler::stats() const noexcept { return impl_->stats_; }

boost::asio::awaitable<void> set_webhook(telegram::BotApi& api, std::string url, std::string secret_token,
                                         std::vector<std::string> allowed_updates,
                                         std::optional<std::int64_t> max_connections) {
  telegram::SetWebhook request{.url = std::move(url)};
  request.secret_token = std::move(secret_token);
  if (!allowed_updates.empty()) {
    request.allowed_updates = std::move(allowed_updates);
  }
  request.max_connections = max_connections;
  co_await api.set_webhook(std::move(request));
}

boost::asio::awaitable<void> delete_webhook(telegram::BotApi& api, bool drop_pending_updates) {
  telegram::DeleteWebhook request{};
  if (drop_pending_updates) {
    request.drop_pending_updates = true;
  }
  co_await api.delete_webhook(std::move(request));
}

}  // namespace sluice::updates
