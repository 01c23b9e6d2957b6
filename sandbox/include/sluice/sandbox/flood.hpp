#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include <sluice/runtime/rate_limit.hpp>

namespace sluice::sandbox {

using Clock = runtime::RateClock;
using Instant = Clock::time_point;

/// A rate with a burst: `burst` sends may happen at once, after which sends
/// are spaced `period / count` apart.
struct RateLimit {
  /// Number of sends per `period`.
  double count = 1;
  std::chrono::milliseconds period = std::chrono::seconds(1);
  /// Sends allowed back to back before the spacing applies (at least 1).
  std::size_t burst = 1;

  /// Returns the sustained rate in sends per second.
  double per_second() const;
};

/// Telegram's sending limits as the sandbox enforces them. Telegram does not
/// publish exact numbers; the defaults follow its FAQ
/// (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
struct FloodOptions {
  /// Turns every limit off.
  bool enabled = true;
  /// All chats together: 30 messages per second.
  RateLimit global{.count = 30, .period = std::chrono::seconds(1), .burst = 30};
  /// One private chat: 1 message per second after a burst of 3.
  RateLimit private_chat{.count = 1, .period = std::chrono::seconds(1), .burst = 3};
  /// One group, supergroup or channel: 20 messages per minute after a
  /// burst of 5.
  RateLimit group{.count = 20, .period = std::chrono::minutes(1), .burst = 5};
  /// All chats together for sends with allow_paid_broadcast: 1000 per
  /// second. Replaces `global` for those sends; the per-chat limits still
  /// apply.
  RateLimit paid_broadcast{.count = 1000, .period = std::chrono::seconds(1), .burst = 1000};
};

/// Decides whether a message send is within the flood limits, with the
/// runtime's GCRA limiters per bucket (global, paid broadcast, each chat).
/// Pure logic: the caller passes the time. Not thread-safe.
class FloodControl {
 public:
  /// Throws std::invalid_argument for a rate that is not positive.
  explicit FloodControl(FloodOptions options = {});

  /// Checks one send to `chat_id` at `now` and, when every bucket admits it,
  /// records it. Returns nullopt when admitted, otherwise Telegram's
  /// retry_after: whole seconds until the send would be admitted, at least 1.
  /// A rejected send consumes nothing.
  std::optional<std::int64_t> admit(std::int64_t chat_id, bool is_group, bool paid_broadcast, Instant now);

  /// Replaces the limits and forgets past sends.
  void set_options(FloodOptions options);
  FloodOptions const& options() const { return options_; }

 private:
  FloodOptions options_;
  runtime::TokenBucket global_;
  runtime::TokenBucket paid_;
  runtime::KeyedGcra<std::int64_t> private_chats_;
  runtime::KeyedGcra<std::int64_t> groups_;
};

}  // namespace sluice::sandbox
