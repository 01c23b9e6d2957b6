#pragma once

// Errors thrown by the Bot API client (sluice::telegram::BotApi).
//
//   BotApiError                  base: the method that failed and attempts made
//   ├── TelegramError            Telegram answered `"ok": false`
//   ├── NetworkError             no usable reply: DNS, connect, TLS, timeout,
//   │                            reset, or an HTTP reply that is not the Bot
//   │                            API's JSON (a proxy's 502 page)
//   └── ApiParseError            a reply arrived but does not match the schema
//
// Every message is passed through `redact`, so no what() string contains the
// bot token. Code that reacts to an error checks the typed fields
// (error_code, retry_after, migrate_to_chat_id, maybe_delivered), never the
// text of what() or description().

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <sluice/http/error.hpp>

namespace sluice::telegram {

/// Base of every error the BotApi client throws for a failed call.
class BotApiError : public std::runtime_error {
 public:
  /// Bot API method name, for example "sendMessage".
  [[nodiscard]] const std::string& method() const noexcept { return method_; }

  /// Attempts made before giving up (1 when the call was not retried).
  [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }

  /// Sets the attempt count; the retry loop calls it before rethrowing.
  void set_attempts(std::uint32_t attempts) noexcept { attempts_ = attempts; }

 protected:
  BotApiError(std::string method, const std::string& message);

 private:
  std::string method_;
  std::uint32_t attempts_ = 1;
};

/// Telegram rejected the call: the reply was `{"ok": false, ...}`.
/// See https://core.telegram.org/bots/api#making-requests and
/// https://core.telegram.org/bots/api#responseparameters.
class TelegramError : public BotApiError {
 public:
  struct Fields {
    std::string method{};
    /// Absent in some real replies (an `"ok": false` with only a description).
    std::optional<int> error_code{};
    std::string description{};
    /// From `parameters.retry_after`: how long the flood limit lasts.
    std::optional<std::chrono::seconds> retry_after{};
    /// From `parameters.migrate_to_chat_id`: the group became a supergroup
    /// with this id; repeat the call with it.
    std::optional<std::int64_t> migrate_to_chat_id{};
  };

  explicit TelegramError(Fields fields);

  [[nodiscard]] const std::optional<int>& error_code() const noexcept { return error_code_; }
  /// Telegram's text, redacted. For display and logs only.
  [[nodiscard]] const std::string& description() const noexcept { return description_; }
  [[nodiscard]] const std::optional<std::chrono::seconds>& retry_after() const noexcept {
    return retry_after_;
  }
  [[nodiscard]] const std::optional<std::int64_t>& migrate_to_chat_id() const noexcept {
    return migrate_to_chat_id_;
  }

  /// True for error_code 429 (flood limit).
  [[nodiscard]] bool is_flood_limit() const noexcept { return error_code_ == 429; }

 private:
  std::optional<int> error_code_;
  std::string description_;
  std::optional<std::chrono::seconds> retry_after_;
  std::optional<std::int64_t> migrate_to_chat_id_;
};

/// The call got no Bot API reply: the transport failed, or the HTTP reply
/// was not the Bot API's JSON envelope.
class NetworkError : public BotApiError {
 public:
  struct Fields {
    std::string method{};
    /// What failed in the HTTP client; absent for a reply that arrived but
    /// is not the Bot API's JSON (see http_status).
    std::optional<http::ErrorKind> kind{};
    /// The underlying system, TLS or HTTP parser error, when there is one.
    std::error_code code{};
    /// True when the request may have reached Telegram (it was written, then
    /// the reply timed out or the connection broke, or a gateway answered
    /// 5xx). A non-idempotent call such as sendMessage may then have taken
    /// effect, so it is not re-sent unless the caller opted in.
    bool maybe_delivered = false;
    /// HTTP status of a reply that was not the Bot API's JSON envelope.
    std::optional<int> http_status{};
    /// Transport error text; it is redacted by the constructor.
    std::string detail{};
  };

  explicit NetworkError(Fields fields);

  [[nodiscard]] const std::optional<http::ErrorKind>& kind() const noexcept { return kind_; }
  [[nodiscard]] const std::error_code& code() const noexcept { return code_; }
  [[nodiscard]] bool maybe_delivered() const noexcept { return maybe_delivered_; }
  [[nodiscard]] const std::optional<int>& http_status() const noexcept { return http_status_; }

 private:
  std::optional<http::ErrorKind> kind_;
  std::error_code code_;
  bool maybe_delivered_;
  std::optional<int> http_status_;
};

/// A reply arrived but is not valid: not JSON, no `ok` field, or a `result`
/// that does not match the method's result type.
class ApiParseError : public BotApiError {
 public:
  /// `path` locates the offending value, for example "result.from.id".
  ApiParseError(std::string method, std::string path, std::string_view detail);

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace sluice::telegram
