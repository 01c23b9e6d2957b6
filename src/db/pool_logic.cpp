#include <sluice/db/detail/pool_logic.hpp>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "db/format_duration.hpp"

namespace sluice::db::detail {
namespace {

// Each connection's recycle limit is shortened by up to this fraction so
// that connections opened in one burst are not all replaced in one burst.
constexpr double kRecycleJitter = 0.025;

}  // namespace

PoolLogic::PoolLogic(const PoolOptions& options) : options_(options) {}

bool PoolLogic::at_capacity() const noexcept {
  if (options_.max_overflow < 0) {
    return false;
  }
  const std::size_t limit = options_.pool_size + static_cast<std::size_t>(options_.max_overflow);
  return open() + connecting_ >= limit;
}

bool PoolLogic::connects_blocked(Clock::time_point now) const noexcept {
  if (closed_ || retry_scheduled_) {
    return true;
  }
  if (breaker_open_) {
    // One probe at a time once the backoff delay has passed.
    return now < retry_at_ || connecting_ > 0;
  }
  return false;
}

std::size_t PoolLogic::connects_to_start(Clock::time_point now) {
  std::size_t started = 0;
  while (connecting_ < waiters_ && !at_capacity() && !connects_blocked(now) &&
         (options_.connecting_limit == 0 || connecting_ < options_.connecting_limit)) {
    ++connecting_;
    ++started;
  }
  return started;
}

void PoolLogic::discard_in_use(CheckoutVerdict why) noexcept {
  --in_use_;
  if (why == CheckoutVerdict::recycle) {
    ++stats_.recycled;
  } else if (why == CheckoutVerdict::invalidated) {
    ++stats_.invalidated;
  }
  closed_one();
}

void PoolLogic::ping_failed(Clock::time_point now) noexcept {
  ++stats_.pings;
  ++stats_.ping_failures;
  invalidated_before_ = now;
}

Placement PoolLogic::cleanup_finished(bool clean, const ConnectionTimes& times, Clock::time_point now) {
  --cleaning_;
  if (!clean) {
    ++stats_.cleanup_failures;
    closed_one();
    return Placement::close;
  }
  if (times.created_at < invalidated_before_) {
    ++stats_.invalidated;
    closed_one();
    return Placement::close;
  }
  (void)now;
  return place_usable();
}

Placement PoolLogic::connect_succeeded(std::chrono::nanoseconds took) {
  --connecting_;
  ++stats_.connects;
  stats_.connect_time.record(took);
  failure_streak_ = 0;
  breaker_open_ = false;
  return place_usable(true);
}

PoolLogic::ConnectFailure PoolLogic::connect_failed(Clock::time_point now, double uniform) {
  --connecting_;
  ++stats_.connect_failures;
  ++failure_streak_;

  // Exponential backoff with "equal jitter": a delay drawn from [d/2, d].
  auto delay = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.connect_backoff_initial);
  const auto cap = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.connect_backoff_max);
  for (std::uint32_t i = 1; i < failure_streak_ && delay < cap; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, cap);
  const auto half = delay / 2;
  const auto jittered =
      half + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(half.count()) * uniform));

  ConnectFailure failure;
  failure.retry_at = now + jittered;
  if (options_.connect_failure_threshold > 0 && failure_streak_ >= options_.connect_failure_threshold) {
    breaker_open_ = true;
    retry_at_ = failure.retry_at;
    failure.fail_waiters = true;
    return failure;
  }
  retry_scheduled_ = true;
  return failure;
}

MaintenanceVerdict PoolLogic::check_idle(const ConnectionTimes& times, Clock::time_point now,
                                         bool driver_pings) const {
  if (times.created_at < invalidated_before_) {
    return MaintenanceVerdict::close_invalidated;
  }
  if (now >= times.expires_at) {
    return MaintenanceVerdict::close_recycled;
  }
  if (options_.idle_timeout.count() > 0 && now - times.last_used >= options_.idle_timeout) {
    return MaintenanceVerdict::close_idle;
  }
  if (driver_pings && waiters_ == 0 && options_.keepalive_interval.count() > 0 &&
      now - times.last_used >= options_.keepalive_interval) {
    return MaintenanceVerdict::ping;
  }
  return MaintenanceVerdict::keep;
}

void PoolLogic::idle_taken_for_maintenance() noexcept {
  --idle_;
  ++in_use_;
}

Placement PoolLogic::maintenance_ping_done(bool ok, Clock::time_point now) {
  --in_use_;
  ++stats_.pings;
  if (!ok) {
    ++stats_.ping_failures;
    invalidated_before_ = now;
    closed_one();
    return Placement::close;
  }
  return place_usable();
}

void PoolLogic::idle_closed(MaintenanceVerdict why) noexcept {
  --idle_;
  if (why == MaintenanceVerdict::close_recycled) {
    ++stats_.recycled;
  } else if (why == MaintenanceVerdict::close_invalidated) {
    ++stats_.invalidated;
  }
  closed_one();
}

Clock::time_point PoolLogic::expiry_for(Clock::time_point created_at, double uniform) const {
  if (options_.pool_recycle.count() < 0) {
    return Clock::time_point::max();
  }
  const auto limit = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.pool_recycle);
  const auto cut = std::chrono::nanoseconds(
      static_cast<std::int64_t>(static_cast<double>(limit.count()) * kRecycleJitter * uniform));
  return created_at + (limit - cut);
}

bool PoolLogic::hold_exceeded(std::chrono::nanoseconds held) noexcept {
  if (options_.hold_warning_threshold.count() <= 0 || held < options_.hold_warning_threshold) {
    return false;
  }
  ++stats_.hold_warnings;
  return true;
}

std::string PoolLogic::describe_counters() const {
  const std::size_t overflow = open() > options_.pool_size ? open() - options_.pool_size : 0;
  const std::string overflow_limit =
      options_.max_overflow < 0 ? std::string("unlimited") : std::to_string(options_.max_overflow);
  std::string text = fmt::format("size {}, idle {}, in use {}, overflow {}/{}, connecting {}, waiters {}",
                                 options_.pool_size, idle_, in_use_, overflow, overflow_limit, connecting_,
                                 waiters_);
  if (cleaning_ > 0) {
    text += fmt::format(", cleaning {}", cleaning_);
  }
  return text;
}

std::string PoolLogic::timeout_message(std::chrono::nanoseconds waited) const {
  return fmt::format("pool `{}` timed out after {}: {}", options_.name, format_duration(waited),
                     describe_counters());
}

std::string PoolLogic::exhausted_message() const {
  return fmt::format("pool `{}` rejected a checkout because max_waiters ({}) callers already wait: {}",
                     options_.name, options_.max_waiters, describe_counters());
}

std::string PoolLogic::connect_failing_message(Clock::time_point now, const std::string& last_error) const {
  const auto next = retry_at_ > now ? retry_at_ - now : Clock::duration::zero();
  return fmt::format("pool `{}` cannot connect ({} connects failed in a row, next attempt in {}): {}",
                     options_.name, failure_streak_, format_duration(next), last_error);
}

std::string PoolLogic::closed_message() const {
  return fmt::format("pool `{}` is closed", options_.name);
}

PoolStats PoolLogic::stats() const {
  PoolStats stats = stats_;
  stats.pool_size = options_.pool_size;
  stats.open = open();
  stats.idle = idle_;
  stats.in_use = in_use_;
  stats.cleaning = cleaning_;
  stats.connecting = connecting_;
  stats.waiters = waiters_;
  stats.overflow = open() > options_.pool_size ? open() - options_.pool_size : 0;
  return stats;
}

}  // namespace sluice::db::detail
