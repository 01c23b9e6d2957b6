#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

namespace sluice::sandbox {

/// The faults the sandbox can inject into a Bot API call.
enum class FaultKind {
  /// Wait before handling the call (the call then proceeds normally).
  latency,
  /// Answer with an HTTP 5xx status without handling the call.
  server_error,
  /// Reset the connection (TCP RST) without handling the call: the client
  /// cannot know whether it was handled, but it was not.
  reset_before_handling,
  /// Handle the call, then reset the connection instead of answering: the
  /// call took effect although the client saw an error.
  reset_after_handling,
  /// Handle the call and send only part of the response body, then close.
  cut_body,
  /// Never answer and keep the connection open; the call is not handled.
  black_hole,
};

/// Returns the snake_case name used in JSON ("server_error", ...).
std::string_view fault_kind_name(FaultKind kind);

/// Parses a snake_case name; nullopt when unknown.
std::optional<FaultKind> parse_fault_kind(std::string_view name);

/// One fault rule: with probability `rate`, a call of `method` gets `kind`.
struct FaultRule {
  /// Method name, case-insensitive; "*" matches every method.
  std::string method = "*";
  FaultKind kind = FaultKind::latency;
  /// Probability per call, 0 to 1.
  double rate = 1.0;
  /// Added latency for `latency` rules: uniform in [latency_min, latency_max].
  std::chrono::milliseconds latency_min{0};
  std::chrono::milliseconds latency_max{0};
  /// HTTP status for `server_error` rules: 500 gets Telegram's JSON error
  /// body, 502 and 504 an nginx-style HTML page like Telegram's front end.
  unsigned status = 500;
  /// Number of times the rule may fire; unlimited by default.
  std::uint64_t max_count = std::numeric_limits<std::uint64_t>::max();
  /// Number of times the rule has fired.
  std::uint64_t fired = 0;
};

/// What to do with one call.
struct FaultDecision {
  std::chrono::milliseconds delay{0};
  /// The failure to inject, if any (never `latency`).
  std::optional<FaultKind> failure;
  unsigned status = 500;
};

/// Picks faults for calls from a list of rules and a seeded generator, so a
/// run is reproducible for a given seed and call order. Not thread-safe.
class FaultInjector {
 public:
  explicit FaultInjector(std::vector<FaultRule> rules = {}, std::uint64_t seed = 1);

  /// Decides the faults of one call of `method`. Every matching latency rule
  /// adds its delay; the first matching failure rule that fires wins.
  FaultDecision decide(std::string_view method);

  void set_rules(std::vector<FaultRule> rules) { rules_ = std::move(rules); }
  std::vector<FaultRule> const& rules() const { return rules_; }

 private:
  std::vector<FaultRule> rules_;
  std::mt19937_64 random_;
};

/// Reads fault rules from JSON: an array of objects with the fields
/// method, kind, rate, latency_ms (a number or [min, max]), status and
/// max_count. Throws std::invalid_argument naming the bad field.
std::vector<FaultRule> fault_rules_from_json(boost::json::value const& value);

/// Serialises rules in the format `fault_rules_from_json` reads.
boost::json::value fault_rules_to_json(std::vector<FaultRule> const& rules);

}  // namespace sluice::sandbox
