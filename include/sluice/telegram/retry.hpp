#pragma once

// Retry policy of the Bot API client: which failures are retried, after how
// long, and for which methods. Pure functions; the client supplies the clock
// and the random jitter.
//
//   | failure                                  | retried?                                  | delay                 |
//   | ---------------------------------------- | ----------------------------------------- | --------------------- |
//   | 429 Too Many Requests                    | yes (unless retry_flood_limit=false)      | retry_after           |
//   | Telegram error_code >= 500               | idempotent method, or opted in            | backoff               |
//   | transport failed before sending          | yes, any method                           | backoff               |
//   | sent, then timeout / reset / gateway 5xx | idempotent method, or opted in            | backoff               |
//   | 400, 401, 403, 404, 409, other 4xx       | never                                     |                       |
//   | `"ok": false` without error_code         | never                                     |                       |
//   | gateway 4xx without a Bot API reply      | never                                     |                       |
//   | invalid reply (ApiParseError)            | never                                     |                       |
//
// Backoff is capped exponential with equal jitter: half the step is fixed,
// the other half random. Every retry also obeys RetryOptions::max_attempts
// and RetryOptions::max_elapsed.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include <sluice/telegram/errors.hpp>

namespace sluice::telegram {

struct RetryOptions {
  /// Attempts per call, the first included; 1 turns retries off.
  std::uint32_t max_attempts = 5;
  /// No retry starts later than this after the first attempt began; waits
  /// (retry_after, backoff) count. A 429 whose retry_after would end past it
  /// is thrown to the caller at once.
  std::chrono::milliseconds max_elapsed = std::chrono::minutes(2);
  /// Backoff before the first retry; it doubles (backoff_multiplier) per
  /// attempt up to max_backoff.
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds(500);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(30);
  double backoff_multiplier = 2.0;
  /// Retry a 429 once its retry_after has passed.
  bool retry_flood_limit = true;
  /// Re-send methods that are not idempotent (sendMessage, forwardMessage,
  /// createChatInviteLink ...) after a failure that may have reached
  /// Telegram. Off by default: the user would get the message twice.
  bool resend_maybe_delivered = false;
};

/// Failure class of one attempt, as far as retrying is concerned.
enum class FailureKind : std::uint8_t {
  flood_limit,      ///< Telegram answered 429.
  server_error,     ///< Telegram answered with error_code >= 500.
  rejected,         ///< Telegram or a gateway rejected the request (4xx, or no error_code).
  /// The request cannot succeed as configured: its URL is invalid, or the
  /// server's certificate failed verification.
  configuration,
  not_sent,         ///< The request cannot have reached Telegram.
  maybe_delivered,  ///< The request may have reached Telegram, with no reply.
  invalid_reply,    ///< A reply arrived but is not valid.
};

struct Failure {
  FailureKind kind = FailureKind::rejected;
  /// For flood_limit: Telegram's retry_after, when it sent one.
  std::optional<std::chrono::seconds> retry_after{};
};

Failure classify_failure(const TelegramError& error);
Failure classify_failure(const NetworkError& error);
Failure classify_failure(const ApiParseError& error);

/// Returns the name of a FailureKind ("flood_limit" ...), for logs and metrics.
std::string_view failure_kind_name(FailureKind kind);

/// True for methods whose repetition has the same effect as one call
/// (getters, set*, delete*, edit*, answer*, pin/unpin, ban/unban, restrict,
/// promote ...). A repeat of a call that took effect may fail where the
/// first succeeded (deleteMessage: "message to delete not found";
/// editMessageText: "message is not modified"), but it changes nothing.
/// Methods that post, forward, copy, create, transfer or pay are not
/// idempotent; nor are close and logOut.
bool is_idempotent(std::string_view method);

struct RetryContext {
  std::string_view method{};
  /// The per-call or default RetryOptions::resend_maybe_delivered.
  bool resend_maybe_delivered = false;
  /// Attempts made so far, the failed one included (1 after the first).
  std::uint32_t attempts_made = 1;
  /// Time since the first attempt began.
  std::chrono::milliseconds elapsed{0};
  /// Uniform random number in [0, 1) for the backoff jitter.
  double jitter = 0.5;
};

struct RetryDecision {
  bool retry = false;
  /// Wait before the next attempt (when retry is true).
  std::chrono::milliseconds delay{0};
  /// Why, in words for a log line: "server error on an idempotent method" ...
  std::string_view reason{};
};

/// Decides whether to make another attempt after `failure`.
RetryDecision decide_retry(const Failure& failure, const RetryContext& context,
                           const RetryOptions& options);

/// Backoff before attempt `attempts_made + 1`: initial_backoff multiplied by
/// backoff_multiplier per earlier retry, capped at max_backoff, then scaled
/// into [step / 2, step) by `jitter` in [0, 1).
std::chrono::milliseconds backoff_delay(const RetryOptions& options, std::uint32_t attempts_made,
                                        double jitter);

}  // namespace sluice::telegram
