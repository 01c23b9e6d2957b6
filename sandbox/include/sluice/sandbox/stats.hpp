#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

namespace sluice::sandbox {

/// A histogram of durations with about 4 % resolution from 1 µs to about
/// 20 minutes, for percentiles without keeping samples.
class LatencyHistogram {
 public:
  void add(std::chrono::nanoseconds value);
  std::uint64_t count() const { return count_; }
  /// Returns the value below which `fraction` (0 to 1) of the samples lie,
  /// as the upper edge of its bucket; zero when empty.
  std::chrono::nanoseconds percentile(double fraction) const;
  std::chrono::nanoseconds max() const { return max_; }
  /// {"count", "p50", "p90", "p99", "p999", "max"} in milliseconds.
  boost::json::object to_json_ms() const;

 private:
  static constexpr int kSubBuckets = 16;
  static constexpr int kOctaves = 31;
  std::array<std::uint64_t, kSubBuckets * kOctaves> buckets_{};
  std::uint64_t count_ = 0;
  std::chrono::nanoseconds max_{0};
};

/// A reply the bot sent out of order: in `chat_id` it replied to
/// `message_id` after it had already replied to the later `after_message_id`.
struct OrderViolation {
  std::int64_t chat_id = 0;
  std::int64_t message_id = 0;
  std::int64_t after_message_id = 0;
};

/// A Bot API call as the sandbox received and answered it.
struct RecordedCall {
  std::uint64_t sequence = 0;
  /// Method name in the Bot API's spelling when known ("sendMessage").
  std::string method;
  /// The chat_id parameter when it named a known chat, else 0.
  std::int64_t chat_id = 0;
  boost::json::object params;
  bool ok = false;
  int error_code = 0;
  std::string description;
  /// Seconds since the sandbox started.
  double time = 0;
};

/// The sandbox's counters.
struct Stats {
  std::uint64_t updates_pushed = 0;
  /// Updates sent to the bot at least once (getUpdates or webhook).
  std::uint64_t updates_delivered = 0;
  /// Updates confirmed by a getUpdates offset or a 2xx webhook reply.
  std::uint64_t updates_confirmed = 0;
  /// Updates dropped by drop_pending_updates or a negative offset.
  std::uint64_t updates_dropped = 0;
  /// Updates not queued because allowed_updates excludes their kind.
  std::uint64_t updates_filtered = 0;
  std::uint64_t calls = 0;
  std::map<std::string, std::uint64_t> calls_by_method;
  std::map<int, std::uint64_t> errors_by_code;
  std::uint64_t responses_429 = 0;
  std::map<std::string, std::uint64_t> faults_by_kind;
  std::uint64_t order_violations = 0;
  /// The first violations, for diagnosis (at most 100 kept).
  std::vector<OrderViolation> order_violation_samples;
  std::uint64_t webhook_deliveries = 0;
  std::uint64_t webhook_failures = 0;
  /// Time from delivering a user's message (or callback query) to the bot's
  /// first call that acts in that chat (or answers the query).
  LatencyHistogram reply_latency;
};

}  // namespace sluice::sandbox
