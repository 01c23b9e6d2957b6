#include <sluice/telegram/retry.hpp>

#include <algorithm>
#include <array>
#include <cmath>

namespace sluice::telegram {
namespace {

// Prefixes of methods that set a state rather than add something: a repeat
// leaves the same state.
constexpr std::array<std::string_view, 21> kIdempotentPrefixes = {
    "get",    "set",     "delete", "edit",   "answer", "pin",    "unpin",
    "ban",    "unban",   "restrict", "promote", "approve", "decline", "verify",
    "remove", "revoke",  "hide",   "unhide", "reopen", "read",   "stop"};

// Idempotent methods that no prefix above covers.
constexpr std::array<std::string_view, 4> kIdempotentMethods = {
    "sendChatAction", "leaveChat", "closeForumTopic", "closeGeneralForumTopic"};

bool starts_with_any(std::string_view method) {
  return std::any_of(kIdempotentPrefixes.begin(), kIdempotentPrefixes.end(),
                     [method](std::string_view prefix) {
                       // A prefix must be followed by an upper-case letter,
                       // so "setup" or "reader" would not match.
                       return method.size() > prefix.size() && method.starts_with(prefix) &&
                              method[prefix.size()] >= 'A' && method[prefix.size()] <= 'Z';
                     });
}

RetryDecision stop(std::string_view reason) { return {.retry = false, .delay{}, .reason = reason}; }

}  // namespace

Failure classify_failure(const TelegramError& error) {
  if (error.error_code() == 429) {
    return {.kind = FailureKind::flood_limit, .retry_after = error.retry_after()};
  }
  if (error.error_code() && *error.error_code() >= 500) {
    return {.kind = FailureKind::server_error};
  }
  return {.kind = FailureKind::rejected};
}

Failure classify_failure(const NetworkError& error) {
  if (error.kind() == http::ErrorKind::invalid_request || error.kind() == http::ErrorKind::tls_certificate) {
    return {.kind = FailureKind::configuration};
  }
  if (error.http_status() && *error.http_status() < 500) {
    return {.kind = FailureKind::rejected};
  }
  return {.kind = error.maybe_delivered() ? FailureKind::maybe_delivered : FailureKind::not_sent};
}

Failure classify_failure(const ApiParseError& /*error*/) {
  return {.kind = FailureKind::invalid_reply};
}

std::string_view failure_kind_name(FailureKind kind) {
  switch (kind) {
    case FailureKind::flood_limit:
      return "flood_limit";
    case FailureKind::server_error:
      return "server_error";
    case FailureKind::rejected:
      return "rejected";
    case FailureKind::configuration:
      return "configuration";
    case FailureKind::not_sent:
      return "not_sent";
    case FailureKind::maybe_delivered:
      return "maybe_delivered";
    case FailureKind::invalid_reply:
      return "invalid_reply";
  }
  return "unknown";
}

bool is_idempotent(std::string_view method) {
  if (std::find(kIdempotentMethods.begin(), kIdempotentMethods.end(), method) !=
      kIdempotentMethods.end()) {
    return true;
  }
  return starts_with_any(method);
}

std::chrono::milliseconds backoff_delay(const RetryOptions& options, std::uint32_t attempts_made,
                                        double jitter) {
  const double initial = static_cast<double>(options.initial_backoff.count());
  const double cap = static_cast<double>(options.max_backoff.count());
  const double exponent = attempts_made == 0 ? 0.0 : static_cast<double>(attempts_made - 1);
  const double step = std::min(cap, initial * std::pow(options.backoff_multiplier, exponent));
  const double clamped_jitter = std::clamp(jitter, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(step / 2 + step / 2 * clamped_jitter));
}

RetryDecision decide_retry(const Failure& failure, const RetryContext& context,
                           const RetryOptions& options) {
  RetryDecision decision;
  switch (failure.kind) {
    case FailureKind::rejected:
      return stop("rejected by Telegram");
    case FailureKind::invalid_reply:
      return stop("invalid reply");
    case FailureKind::configuration:
      return stop("invalid URL or untrusted certificate; a retry cannot succeed");
    case FailureKind::flood_limit:
      if (!options.retry_flood_limit) {
        return stop("flood limit and retry_flood_limit is off");
      }
      decision = {.retry = true,
                  .delay = failure.retry_after
                               ? std::chrono::milliseconds(*failure.retry_after)
                               : backoff_delay(options, context.attempts_made, context.jitter),
                  .reason = "flood limit"};
      break;
    case FailureKind::not_sent:
      decision = {.retry = true,
                  .delay = backoff_delay(options, context.attempts_made, context.jitter),
                  .reason = "request not sent"};
      break;
    case FailureKind::server_error:
    case FailureKind::maybe_delivered:
      if (is_idempotent(context.method)) {
        decision.reason = "idempotent method";
      } else if (context.resend_maybe_delivered) {
        decision.reason = "resend_maybe_delivered is on";
      } else {
        return stop("may have been delivered and the method is not idempotent");
      }
      decision.retry = true;
      decision.delay = backoff_delay(options, context.attempts_made, context.jitter);
      break;
  }

  if (context.attempts_made >= options.max_attempts) {
    return stop("max_attempts reached");
  }
  if (context.elapsed + decision.delay > options.max_elapsed) {
    return stop("max_elapsed would be exceeded");
  }
  return decision;
}

}  // namespace sluice::telegram
