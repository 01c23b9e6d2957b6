#include <sluice/telegram/bot_api.hpp>

#include <algorithm>
#include <array>
#include <exception>
#include <stdexcept>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/url/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>

#include <sluice/http/multipart.hpp>
#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/offload.hpp>
#include <sluice/telegram/bot_api_response.hpp>
#include <sluice/telegram/redact.hpp>
#include <sluice/telegram/token.hpp>

#include "http/url_port.hpp"

namespace sluice::telegram {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Stack buffer for parsing a reply: a sendMessage reply is about 1 KiB of
// JSON, so most replies parse without a heap allocation for the DOM.
constexpr std::size_t kReplyArenaBytes = 8 * 1024;

// MIME type of an upload that does not name one.
constexpr std::string_view kDefaultUploadType = "application/octet-stream";

std::string_view host_of(std::string_view url) {
  const auto scheme_end = url.find("://");
  std::string_view rest = scheme_end == std::string_view::npos ? url : url.substr(scheme_end + 3);
  return rest.substr(0, rest.find('/'));
}

}  // namespace

std::optional<std::string> check_base_url(std::string_view url) {
  const auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) {
    return "it is not an absolute URL such as https://api.telegram.org (" + parsed.error().message() + ")";
  }
  if (parsed->scheme_id() != boost::urls::scheme::http && parsed->scheme_id() != boost::urls::scheme::https) {
    return std::string("it must start with http:// or https://");
  }
  if (parsed->host_address().empty()) {
    return std::string("it has no host");
  }
  if (parsed->has_port() && http::detail::port_of(*parsed) == 0) {
    return std::string("its port is not a number from 1 to 65535");
  }
  if (parsed->has_query() || parsed->has_fragment()) {
    return std::string("it has a query or fragment; give the root only");
  }
  return std::nullopt;
}

namespace {

void validate(const BotApiOptions& options) {
  if (options.token.size() < kMinSecretLength) {
    throw std::invalid_argument(fmt::format(
        "BotApiOptions::token is missing or too short ({} characters); set it to the token "
        "from @BotFather",
        options.token.size()));
  }
  if (const auto problem = check_token(options.token)) {
    throw std::invalid_argument(fmt::format("BotApiOptions::token is invalid: {}", *problem));
  }
  if (const auto problem = check_base_url(options.base_url)) {
    throw std::invalid_argument(
        fmt::format("BotApiOptions::base_url \"{}\" is invalid: {}", redact(options.base_url), *problem));
  }
  if (options.max_in_flight == 0) {
    throw std::invalid_argument("BotApiOptions::max_in_flight is 0; it must be at least 1");
  }
  if (options.max_in_flight > options.http.max_connections_per_host) {
    throw std::invalid_argument(fmt::format(
        "BotApiOptions::max_in_flight ({}) exceeds http.max_connections_per_host ({}): calls "
        "would wait for a connection after their flood-control turn; lower max_in_flight or "
        "raise the pool size",
        options.max_in_flight, options.http.max_connections_per_host));
  }
}

std::string trimmed_base_url(std::string url) {
  while (url.ends_with('/')) {
    url.pop_back();
  }
  return url;
}

NetworkError to_network_error(std::string_view method, const http::HttpError& error) {
  return NetworkError({
      .method = std::string(method),
      .kind = error.kind(),
      .code = error.cause(),
      .maybe_delivered = error.maybe_delivered(),
      .http_status = std::nullopt,
      .detail = error.what(),
  });
}

// Checks the reply and converts its result; the DOM lives in a stack arena.
void handle_reply(std::string_view method, const http::Response& response,
                  detail::ResultReader reader, void* out) {
  std::array<unsigned char, kReplyArenaBytes> arena;
  boost::json::monotonic_resource resource(arena.data(), arena.size());
  const boost::json::value reply =
      parse_reply(method, static_cast<int>(response.result_int()), response.body(), &resource);
  reader(method, reply_result(method, reply), out);
}

struct EncodedBody {
  std::string body;
  std::string content_type;
};

std::string form_value(const boost::json::value& value) {
  if (const auto* text = value.if_string()) {
    return std::string(*text);
  }
  return boost::json::serialize(value);
}

// Builds the multipart/form-data body of a request with uploads. Reads the
// files of path uploads, so it may block.
EncodedBody encode_multipart(const SerializedRequest& request) {
  http::MultipartBody body;
  for (const auto& [key, value] : request.fields) {
    body.add_field(key, form_value(value));
  }
  for (const Upload& upload : request.uploads) {
    const InputFile& file = upload.file;
    const std::string_view type =
        file.mime_type().empty() ? kDefaultUploadType : std::string_view(file.mime_type());
    if (file.kind() == InputFile::Kind::Path) {
      body.add_file_from_path(upload.part_name, file.path(), type,
                              file.filename().empty() ? std::nullopt
                                                      : std::optional(file.filename()));
    } else {
      body.add_file(upload.part_name, file.filename(), type, std::string(file.data()));
    }
  }
  std::string encoded = body.finish();
  return {.body = std::move(encoded), .content_type = body.content_type()};
}

bool has_path_upload(const SerializedRequest& request) {
  return std::any_of(request.uploads.begin(), request.uploads.end(), [](const Upload& upload) {
    return upload.file.kind() == InputFile::Kind::Path;
  });
}

// Keeps BotApiMetrics::in_flight right on every exit path.
class InFlightCount {
 public:
  explicit InFlightCount(std::uint64_t& count) : count_(count) { ++count_; }
  ~InFlightCount() { --count_; }
  InFlightCount(const InFlightCount&) = delete;
  InFlightCount& operator=(const InFlightCount&) = delete;

 private:
  std::uint64_t& count_;
};

}  // namespace

namespace detail {

ChatKey chat_key(const ChatId& chat) {
  if (auto id = chat.id()) {
    return ChatKey{*id};
  }
  return ChatKey{std::string(chat.username())};
}

}  // namespace detail

BotApi::BotApi(asio::any_io_executor executor, BotApiOptions options)
    // The options are checked before any member is built from them.
    : executor_((validate(options), std::move(executor))),
      max_in_flight_(options.max_in_flight),
      retry_(options.retry),
      long_poll_margin_(options.long_poll_margin),
      blocking_pool_(options.blocking_pool),
      jitter_engine_(options.jitter_seed != 0 ? options.jitter_seed : std::random_device{}()),
      logger_(runtime::module_logger("sluice.telegram")),
      http_(executor_, options.http),
      flood_(executor_, options.flood),
      in_flight_(executor_, options.max_in_flight, "bot_api.in_flight") {
  register_secret(options.token);
  install_redaction_everywhere();

  const std::string base_url = trimmed_base_url(options.base_url);
  url_prefix_ = base_url + "/bot" + options.token + "/";
  host_label_ = std::string(host_of(base_url));
  logger_->info("Bot API client created: host={} max_in_flight={} flood_control={}",
                host_label_, max_in_flight_, options.flood.enabled ? "on" : "off");
}

BotApi::~BotApi() = default;

BotApiMetrics BotApi::metrics() const {
  BotApiMetrics snapshot;
  for (const auto& [method, count] : counters_.calls) {
    snapshot.calls.emplace(std::string(method), count);
  }
  snapshot.telegram_errors = counters_.telegram_errors;
  snapshot.network_errors = counters_.network_errors;
  snapshot.invalid_replies = counters_.invalid_replies;
  snapshot.flood_limits = counters_.flood_limits;
  snapshot.retries = counters_.retries;
  snapshot.in_flight = counters_.in_flight;
  return snapshot;
}

asio::awaitable<void> BotApi::execute(detail::PreparedCall call, detail::ResultReader reader,
                                      void* out) {
  const std::string_view method = call.method;
  ++counters_.calls[method];

  // Encode the body once; every attempt sends a copy.
  EncodedBody encoded;
  if (call.request.needs_multipart()) {
    if (blocking_pool_ != nullptr && has_path_upload(call.request)) {
      auto encode = [&request = call.request] { return encode_multipart(request); };
      encoded = co_await runtime::offload(*blocking_pool_, std::move(encode));
    } else {
      // NOTE: without BotApiOptions::blocking_pool, files of path uploads are
      // read here, on the event loop.
      encoded = encode_multipart(call.request);
    }
  } else {
    encoded = {.body = boost::json::serialize(call.request.fields),
               .content_type = "application/json"};
  }

  const bool gated = !call.long_poll;
  const bool resend = call.resend_maybe_delivered.value_or(retry_.resend_maybe_delivered);
  const auto started = Clock::now();
  std::uniform_real_distribution<double> jitter(0.0, 1.0);

  for (std::uint32_t attempt = 1;; ++attempt) {
    std::exception_ptr error;
    Failure failure;

    {
      runtime::Permit permit;
      if (gated) {
        // A pause can start while the call waits for a permit; the call then
        // gives the permit back and queues in the flood gate again.
        for (;;) {
          co_await flood_.wait(call.flood);
          permit = co_await in_flight_.acquire();
          if (!flood_.paused_until(call.flood)) {
            break;
          }
          permit.release();
        }
      }

      InFlightCount in_flight(counters_.in_flight);
      http::ClientRequest request{
          .method = http::Verb::post,
          .url = url_prefix_ + std::string(method),
          .body = encoded.body,
          .content_type = encoded.content_type,
          .headers = {},
          .timeout = call.timeout,
          .operation = std::string(method),
          .lane = call.long_poll ? http::Lane::dedicated : http::Lane::standard,
          .idempotent = is_idempotent(method),
      };

      try {
        const http::Response response = co_await http_.request(std::move(request));
        handle_reply(method, response, reader, out);
        logger_->debug("call succeeded: method={} attempt={} status={}", method, attempt,
                       response.result_int());
        co_return;
      } catch (const TelegramError& e) {
        failure = classify_failure(e);
        ++counters_.telegram_errors[e.error_code().value_or(0)];
        if (failure.kind == FailureKind::flood_limit) {
          ++counters_.flood_limits;
        }
        error = std::current_exception();
      } catch (const NetworkError& e) {
        failure = classify_failure(e);
        ++counters_.network_errors;
        error = std::current_exception();
      } catch (const ApiParseError& e) {
        failure = classify_failure(e);
        ++counters_.invalid_replies;
        error = std::current_exception();
      } catch (const http::HttpError& e) {
        NetworkError converted = to_network_error(method, e);
        failure = classify_failure(converted);
        ++counters_.network_errors;
        error = std::make_exception_ptr(std::move(converted));
      }
    }

    // A 429 pauses its scope for every call, this one included.
    if (failure.kind == FailureKind::flood_limit && failure.retry_after && gated) {
      flood_.pause(call.flood, *failure.retry_after);
    }

    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    const RetryDecision decision = decide_retry(failure,
                                                {.method = method,
                                                 .resend_maybe_delivered = resend,
                                                 .attempts_made = attempt,
                                                 .elapsed = elapsed,
                                                 .jitter = jitter(jitter_engine_)},
                                                retry_);
    if (!decision.retry) {
      try {
        std::rethrow_exception(error);
      } catch (BotApiError& e) {
        e.set_attempts(attempt);
        logger_->debug("call failed: method={} attempts={} failure={} reason=\"{}\" error=\"{}\"",
                       method, attempt, failure_kind_name(failure.kind), decision.reason,
                       e.what());
        throw;
      }
    }

    ++counters_.retries;
    logger_->log(failure.kind == FailureKind::flood_limit ? spdlog::level::info
                                                          : spdlog::level::warn,
                 "retrying call: method={} attempt={} failure={} reason=\"{}\" delay_ms={}",
                 method, attempt + 1, failure_kind_name(failure.kind), decision.reason,
                 decision.delay.count());

    // After a 429 the next attempt waits in the flood gate until the pause
    // ends; after other failures it waits here.
    const bool gate_waits = gated && failure.kind == FailureKind::flood_limit &&
                            failure.retry_after && flood_.options().enabled;
    if (!gate_waits && decision.delay > std::chrono::milliseconds::zero()) {
      asio::steady_timer timer(executor_, decision.delay);
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
}

}  // namespace sluice::telegram
