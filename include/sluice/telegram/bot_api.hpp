#pragma once

// BotApi: the typed Bot API client.
//
//   BotApi api(io.get_executor(), {.token = token});
//   SendMessage hello{.chat_id = chat, .text = "hi"};
//   Message sent = co_await api.send_message(std::move(hello));
//   co_await api.bulk().send_message(std::move(newsletter));   // bulk lane
//
// With g++ 12, build the request in a named local as above: a request
// written inside the `co_await` expression (`co_await
// api.send_message({...})`) is destroyed twice because of GCC PR 100611.
// clang accepts both forms.
//
// Every call passes three steps in order. First flood control (FloodGate:
// global, per-chat and per-group budgets and 429 pauses; see
// flood_control.hpp), then the in-flight limit (a Semaphore of
// BotApiOptions::max_in_flight permits), then one HTTP POST to
// `<base_url>/bot<token>/<method>`. Failures are retried as
// retry.hpp describes; what remains is thrown as TelegramError,
// NetworkError or ApiParseError (errors.hpp).
//
// getUpdates skips flood control and the in-flight limit and uses a
// dedicated connection, with an HTTP deadline of its `timeout` plus
// BotApiOptions::long_poll_margin.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <sluice/http/client.hpp>
#include <sluice/runtime/semaphore.hpp>
#include <sluice/telegram/chat_id.hpp>
#include <sluice/telegram/errors.hpp>
#include <sluice/telegram/flood_control.hpp>
#include <sluice/telegram/json.hpp>
#include <sluice/telegram/methods.hpp>
#include <sluice/telegram/request.hpp>
#include <sluice/telegram/retry.hpp>

namespace sluice::runtime {
class BlockingPool;
}

namespace spdlog {
class logger;
}

namespace sluice::telegram {

struct BotApiOptions {
  /// Bot token from @BotFather ("123456:ABC..."). Required. It is registered
  /// with `register_secret`, so no log line or error message shows it.
  std::string token{};
  /// Bot API server. A local Bot API server or the sluice sandbox needs only
  /// another URL, for example "http://127.0.0.1:8081".
  std::string base_url = "https://api.telegram.org";
  /// Calls with an HTTP request in progress at once (getUpdates not
  /// counted). Must not exceed http.max_connections_per_host: a larger value
  /// throws std::invalid_argument from the constructor, because calls would
  /// then queue for a connection inside the HTTP client after their flood
  /// control turn.
  std::size_t max_in_flight = 32;
  FloodOptions flood{};
  RetryOptions retry{};
  /// HTTP client settings; request_timeout is the deadline of one attempt.
  http::ClientOptions http{};
  /// getUpdates gets an HTTP deadline of its long-poll timeout plus this.
  std::chrono::milliseconds long_poll_margin = std::chrono::seconds(10);
  /// Reads files of InputFile::from_path uploads off the event loop when
  /// set; must outlive the BotApi. When empty the file is read on the loop.
  runtime::BlockingPool* blocking_pool = nullptr;
  /// Seed of the backoff jitter; 0 seeds from std::random_device.
  std::uint64_t jitter_seed = 0;
};

/// Per-call settings.
struct CallOptions {
  Lane lane = Lane::interactive;
  /// Overrides RetryOptions::resend_maybe_delivered for this call.
  std::optional<bool> resend_maybe_delivered{};
  /// Overrides the HTTP deadline of each attempt of this call.
  std::optional<std::chrono::milliseconds> timeout{};
};

/// Counters of one BotApi, copied by BotApi::metrics().
struct BotApiMetrics {
  /// Calls started per method.
  std::map<std::string, std::uint64_t, std::less<>> calls{};
  /// TelegramError replies per error_code (0 for a reply without one),
  /// counted per attempt.
  std::map<int, std::uint64_t> telegram_errors{};
  /// Attempts that failed in transport (NetworkError).
  std::uint64_t network_errors = 0;
  /// Replies that did not match the schema (ApiParseError).
  std::uint64_t invalid_replies = 0;
  /// 429 replies.
  std::uint64_t flood_limits = 0;
  /// Attempts after the first.
  std::uint64_t retries = 0;
  /// Calls that have an HTTP request in progress now.
  std::uint64_t in_flight = 0;
};

class BotApi;

namespace detail {

/// A request prepared for sending; built by BotApi::call, consumed by
/// BotApi::execute.
struct PreparedCall {
  std::string_view method{};
  SerializedRequest request{};
  FloodRequest flood{};
  bool long_poll = false;
  std::optional<bool> resend_maybe_delivered{};
  std::optional<std::chrono::milliseconds> timeout{};
};

/// Converts a reply's `result` into the typed value at `out`; throws
/// ApiParseError.
using ResultReader = void (*)(std::string_view method, const boost::json::value& result,
                              void* out);

template <class Result>
void read_result(std::string_view method, const boost::json::value& result, void* out) {
  if (auto error = try_from_json(result, *static_cast<Result*>(out), "result")) {
    throw ApiParseError(std::string(method), error->path(), error->reason());
  }
}

ChatKey chat_key(const ChatId& chat);

/// The flood-control facts of a request: its class, chat and paid flag.
template <class Request>
FloodRequest flood_request(const Request& request, Lane lane) {
  FloodRequest flood{.kind = classify_flood(Request::method_name), .lane = lane};
  if constexpr (requires { request.chat_id; }) {
    using Field = std::remove_cvref_t<decltype(request.chat_id)>;
    if constexpr (std::is_same_v<Field, ChatId>) {
      flood.chat = chat_key(request.chat_id);
    } else if constexpr (std::is_same_v<Field, std::optional<ChatId>>) {
      if (request.chat_id) {
        flood.chat = chat_key(*request.chat_id);
      }
    } else if constexpr (std::is_same_v<Field, std::int64_t>) {
      flood.chat = ChatKey{request.chat_id};
    } else if constexpr (std::is_same_v<Field, std::optional<std::int64_t>>) {
      if (request.chat_id) {
        flood.chat = ChatKey{*request.chat_id};
      }
    }
  }
  if constexpr (requires { request.allow_paid_broadcast; }) {
    flood.paid_broadcast = request.allow_paid_broadcast.value_or(false);
  }
  return flood;
}

/// Generated member functions, one per Bot API method, shared by BotApi
/// and BotApiLane: `send_message(SendMessage, CallOptions)` and so on.
template <class Derived>
class BotApiMethods {
 public:
#define SLUICE_BOT_API_METHOD(function, Request)                                        \
  boost::asio::awaitable<typename Request::result_type> function(Request request,       \
                                                                 CallOptions options = {}) { \
    return static_cast<Derived&>(*this).call(std::move(request), std::move(options));   \
  }
#include <sluice/telegram/generated/bot_api_methods.inc>
#undef SLUICE_BOT_API_METHOD
};

}  // namespace detail

/// Returns why `url` cannot be a BotApiOptions::base_url (the Bot API root,
/// such as https://api.telegram.org or http://127.0.0.1:8081), or nothing
/// when it can. A path is allowed, for a server behind a reverse proxy.
std::optional<std::string> check_base_url(std::string_view url);

/// A view of a BotApi whose calls all go to one lane; see BotApi::bulk().
/// Cheap to copy; the BotApi must outlive it.
class BotApiLane : public detail::BotApiMethods<BotApiLane> {
 public:
  BotApiLane(BotApi& api, Lane lane) : api_(&api), lane_(lane) {}

  /// BotApi::call with CallOptions::lane set to this view's lane.
  template <class Request>
  boost::asio::awaitable<typename Request::result_type> call(Request request,
                                                            CallOptions options = {});

 private:
  BotApi* api_;
  Lane lane_;
};

/// The Bot API client. One per bot token and event loop.
///
/// Threads: not thread-safe; construct, call and destroy it on the thread
/// that runs `executor` (a single-threaded io_context's).
///
/// Lifetime: calls use the BotApi, so it must outlive every call; close the
/// TaskSet that runs handlers before destroying it. Destroy it before the
/// io_context.
class BotApi : public detail::BotApiMethods<BotApi> {
 public:
  /// Throws std::invalid_argument for an empty or too short token, a
  /// base_url that is not http(s)://, max_in_flight of 0 or above
  /// http.max_connections_per_host, and invalid flood options.
  BotApi(boost::asio::any_io_executor executor, BotApiOptions options);
  ~BotApi();
  BotApi(const BotApi&) = delete;
  BotApi& operator=(const BotApi&) = delete;

  /// Calls the Bot API method of `request` (a generated request struct such
  /// as SendMessage) and returns its typed result.
  ///
  /// Errors: TelegramError, NetworkError or ApiParseError once retries are
  /// exhausted or not allowed; BotApiError::attempts() returns how many
  /// were made. std::invalid_argument when the request cannot be serialised.
  /// Cancellation: terminal cancellation of the awaiting coroutine stops the
  /// call at its current step (flood-control wait, in-flight wait, HTTP
  /// request or retry wait) and throws boost::system::system_error with
  /// operation_aborted. A request already written may still take effect.
  /// Ordering: as FloodGate, then FIFO for the in-flight limit; calls on
  /// different chats may complete in any order.
  /// Executor: runs on the BotApi's executor.
  template <class Request>
  boost::asio::awaitable<typename Request::result_type> call(Request request,
                                                            CallOptions options = {});

  /// Takes the flood-control budgets `request` would take on the
  /// interactive lane, waiting for them, without sending it: for a call
  /// that reaches Telegram another way, such as in a webhook reply.
  /// Cancellation and errors: those of FloodGate::wait.
  template <class Request>
  boost::asio::awaitable<void> take_flood_budget(const Request& request) {
    // A named local: g++ 12 may destroy a temporary in a co_await twice.
    FloodRequest flood = detail::flood_request(request, Lane::interactive);
    co_await flood_.wait(std::move(flood));
  }

  /// A view whose calls use the bulk lane: they wait while interactive
  /// calls are queued for the same budgets.
  BotApiLane bulk() { return BotApiLane(*this, Lane::bulk); }

  [[nodiscard]] BotApiMetrics metrics() const;

  /// The flood gate, for inspection (queued calls, pauses).
  [[nodiscard]] const FloodGate& flood_gate() const { return flood_; }

  [[nodiscard]] const boost::asio::any_io_executor& get_executor() const { return executor_; }

 private:
  struct Counters {
    std::unordered_map<std::string_view, std::uint64_t> calls;
    std::map<int, std::uint64_t> telegram_errors;
    std::uint64_t network_errors = 0;
    std::uint64_t invalid_replies = 0;
    std::uint64_t flood_limits = 0;
    std::uint64_t retries = 0;
    std::uint64_t in_flight = 0;
  };

  template <class Request>
  detail::PreparedCall prepare(Request&& request, const CallOptions& options) const;

  template <class Result>
  boost::asio::awaitable<Result> call_prepared(detail::PreparedCall prepared);
  template <class Result>
  static boost::asio::awaitable<Result> fail_later(std::exception_ptr error);
  boost::asio::awaitable<void> execute(detail::PreparedCall call, detail::ResultReader reader,
                                       void* out);

  boost::asio::any_io_executor executor_;
  std::string url_prefix_;
  std::string host_label_;
  std::size_t max_in_flight_;
  RetryOptions retry_;
  std::chrono::milliseconds long_poll_margin_;
  runtime::BlockingPool* blocking_pool_;
  std::mt19937_64 jitter_engine_;
  std::shared_ptr<spdlog::logger> logger_;
  http::Client http_;
  FloodGate flood_;
  runtime::Semaphore in_flight_;
  Counters counters_;
};

template <class Request>
detail::PreparedCall BotApi::prepare(Request&& request, const CallOptions& options) const {
  detail::PreparedCall call{
      .method = Request::method_name,
      .request = {},
      .flood = detail::flood_request(request, options.lane),
      .long_poll = Request::method_name == std::string_view("getUpdates"),
      .resend_maybe_delivered = options.resend_maybe_delivered,
      .timeout = options.timeout,
  };
  if constexpr (requires { request.timeout; }) {
    if (call.long_poll && !call.timeout) {
      const auto poll_seconds = std::chrono::seconds(request.timeout.value_or(0));
      call.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(poll_seconds) +
                     long_poll_margin_;
    }
  }
  call.request = serialize_request(request);
  return call;
}

template <class Result>
boost::asio::awaitable<Result> BotApi::call_prepared(detail::PreparedCall prepared) {
  Result result{};
  co_await execute(std::move(prepared), &detail::read_result<Result>, &result);
  co_return result;
}

template <class Result>
boost::asio::awaitable<Result> BotApi::fail_later(std::exception_ptr error) {
  std::rethrow_exception(error);
  co_return Result{};
}

// Not a coroutine: the request is serialised here, so that the frame of the
// call does not keep a copy of it (a SendMessage is 752 bytes, and frames
// above about 1 KB are not recycled).
template <class Request>
boost::asio::awaitable<typename Request::result_type> BotApi::call(Request request,
                                                                  CallOptions options) {
  using Result = typename Request::result_type;
  std::exception_ptr error;
  try {
    return call_prepared<Result>(prepare(std::move(request), options));
  } catch (...) {
    error = std::current_exception();
  }
  // Thrown when the call is awaited, like the other errors.
  return fail_later<Result>(error);
}

template <class Request>
boost::asio::awaitable<typename Request::result_type> BotApiLane::call(Request request,
                                                                      CallOptions options) {
  options.lane = lane_;
  return api_->call(std::move(request), std::move(options));
}

}  // namespace sluice::telegram
