#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <sluice/db/pool_options.hpp>
#include <sluice/db/return_state.hpp>
#include <sluice/db/pool_stats.hpp>

namespace sluice::db::detail {

using Clock = std::chrono::steady_clock;

/// Timestamps of one connection that checkout decisions need.
struct ConnectionTimes {
  Clock::time_point created_at;
  Clock::time_point expires_at = Clock::time_point::max();  ///< recycle limit with jitter
  Clock::time_point last_used;                              ///< last return to the pool
  bool fresh = false;  ///< opened for the checkout that receives it
};

enum class AcquireAction {
  take_idle,               ///< pop an idle connection, then check_connection()
  wait,                    ///< queue, then start connects_to_start() connects
  reject_exhausted,        ///< max_waiters callers already wait
  reject_connect_failing,  ///< connects keep failing; fail with the last error
  reject_closed,
};

enum class CheckoutVerdict { use, ping, recycle, invalidated };

enum class Placement {
  hand_to_waiter,  ///< give it to the oldest waiter
  keep_idle,
  close,
  clean_up,        ///< cancel / drain / roll back in the background
};

enum class MaintenanceVerdict { keep, close_idle, close_recycled, close_invalidated, ping };

/// The checkout decisions of a Pool as a pure state machine: counters in,
/// decisions out, no I/O, no clock, no randomness (callers pass `now` and
/// uniform numbers in [0, 1)). The Pool keeps its lists in step with these
/// counters; invariants: open == idle + in_use + cleaning, open + connecting
/// <= pool_size + max_overflow, and idle > 0 implies waiters == 0.
class PoolLogic {
 public:
  explicit PoolLogic(const PoolOptions& options);

  // --- acquire -------------------------------------------------------------

  /// Decides the first step of an acquire() and updates the counters for it
  /// (take_idle: idle -> in_use; wait: one more waiter).
  AcquireAction begin_acquire(Clock::time_point now);

  /// Number of connects to start now (each already counted as connecting).
  std::size_t connects_to_start(Clock::time_point now);

  /// A waiter left the queue without a connection (timeout, cancellation,
  /// failure).
  void waiter_left() noexcept { --waiters_; }

  /// Decides whether a connection just taken for a checkout can be used.
  CheckoutVerdict check_connection(const ConnectionTimes& times, Clock::time_point now,
                                   bool driver_pings) const;

  /// A connection taken for checkout (in use) is closed before the caller
  /// got it: recycled, invalidated, its ping failed or was interrupted.
  void discard_in_use(CheckoutVerdict why) noexcept;

  /// try_acquire() puts back an idle connection it cannot use without I/O.
  void untake_idle() noexcept {
    --in_use_;
    ++idle_;
  }

  /// A checkout's ping failed at `now`: every connection opened before it is
  /// invalid.
  void ping_failed(Clock::time_point now) noexcept;

  /// Marks every connection opened before `now` invalid (SQLAlchemy's
  /// pool-wide invalidation time).
  void invalidate(Clock::time_point now) noexcept { invalidated_before_ = now; }
  void ping_succeeded() noexcept { ++stats_.pings; }

  // --- return --------------------------------------------------------------

  /// Decides what to do with a connection returned in `state`.
  Placement on_return(ReturnState state, const ConnectionTimes& times, Clock::time_point now);

  /// A background clean-up finished; `clean` tells whether the connection is
  /// reusable.
  Placement cleanup_finished(bool clean, const ConnectionTimes& times, Clock::time_point now);

  // --- connect -------------------------------------------------------------

  Placement connect_succeeded(std::chrono::nanoseconds took);

  struct ConnectFailure {
    /// True if the failure streak reached connect_failure_threshold: the
    /// pool fails every waiter with the connect error, and acquire() fails
    /// at once until retry_at.
    bool fail_waiters = false;
    /// When to retry if callers still wait (only meaningful if
    /// fail_waiters is false).
    Clock::time_point retry_at;
  };
  ConnectFailure connect_failed(Clock::time_point now, double uniform);

  /// The backoff timer scheduled by connect_failed() fired.
  void retry_due() noexcept { retry_scheduled_ = false; }

  // --- maintenance ---------------------------------------------------------

  MaintenanceVerdict check_idle(const ConnectionTimes& times, Clock::time_point now,
                                bool driver_pings) const;
  /// An idle connection is taken out for a maintenance ping (idle -> in use).
  void idle_taken_for_maintenance() noexcept;
  /// A maintenance ping finished.
  Placement maintenance_ping_done(bool ok, Clock::time_point now);
  /// An idle connection is closed by maintenance, invalidation or shutdown.
  void idle_closed(MaintenanceVerdict why) noexcept;

  // --- shutdown ------------------------------------------------------------

  void close() noexcept { closed_ = true; }
  bool closed() const noexcept { return closed_; }

  // --- helpers -------------------------------------------------------------

  /// The recycle limit of a connection opened at `created_at`.
  Clock::time_point expiry_for(Clock::time_point created_at, double uniform) const;

  /// Returns true and counts a warning if a hold of `held` deserves one.
  bool hold_exceeded(std::chrono::nanoseconds held) noexcept;

  void record_wait(std::chrono::nanoseconds waited) noexcept { stats_.wait_time.record(waited); }
  void record_hold(std::chrono::nanoseconds held) noexcept { stats_.hold_time.record(held); }
  void count_timeout() noexcept { ++stats_.timeouts; }
  void count_acquired() noexcept { ++stats_.acquired; }

  /// "pool `main` timed out after 5 s: size 10, idle 0, in use 15, ..."
  std::string timeout_message(std::chrono::nanoseconds waited) const;
  std::string exhausted_message() const;
  std::string connect_failing_message(Clock::time_point now, const std::string& last_error) const;
  std::string closed_message() const;
  /// "size 10, idle 0, in use 15, overflow 5/5, connecting 0, waiters 37"
  std::string describe_counters() const;

  PoolStats stats() const;
  std::size_t idle() const noexcept { return idle_; }
  std::size_t in_use() const noexcept { return in_use_; }
  std::size_t cleaning() const noexcept { return cleaning_; }
  std::size_t connecting() const noexcept { return connecting_; }
  std::size_t waiters() const noexcept { return waiters_; }
  std::size_t open() const noexcept { return idle_ + in_use_ + cleaning_; }
  Clock::time_point invalidated_before() const noexcept { return invalidated_before_; }
  const PoolOptions& options() const noexcept { return options_; }

 private:
  bool at_capacity() const noexcept;
  bool connects_blocked(Clock::time_point now) const noexcept;
  Placement place_usable(bool fresh = false);
  void closed_one() noexcept { ++stats_.closed; }

  PoolOptions options_;
  std::size_t idle_ = 0;
  std::size_t in_use_ = 0;
  std::size_t cleaning_ = 0;
  std::size_t connecting_ = 0;
  std::size_t waiters_ = 0;
  std::uint32_t failure_streak_ = 0;
  bool breaker_open_ = false;
  bool retry_scheduled_ = false;
  bool closed_ = false;
  Clock::time_point retry_at_{};
  Clock::time_point invalidated_before_{};
  PoolStats stats_;
};

// Inline because they run on every checkout and return.

inline AcquireAction PoolLogic::begin_acquire(Clock::time_point now) {
  if (closed_) {
    return AcquireAction::reject_closed;
  }
  if (idle_ > 0) {
    --idle_;
    ++in_use_;
    return AcquireAction::take_idle;
  }
  if (breaker_open_ && now < retry_at_) {
    // After retry_at_ one probe connect is allowed; callers arriving while
    // it runs wait for it.
    ++stats_.rejected_connect_failing;
    return AcquireAction::reject_connect_failing;
  }
  if (options_.max_waiters != 0 && waiters_ >= options_.max_waiters) {
    ++stats_.rejected_exhausted;
    return AcquireAction::reject_exhausted;
  }
  ++waiters_;
  return AcquireAction::wait;
}

inline CheckoutVerdict PoolLogic::check_connection(const ConnectionTimes& times, Clock::time_point now,
                                                   bool driver_pings) const {
  if (times.created_at < invalidated_before_) {
    return CheckoutVerdict::invalidated;
  }
  if (now >= times.expires_at) {
    return CheckoutVerdict::recycle;
  }
  if (options_.pool_pre_ping && driver_pings && !times.fresh &&
      now - times.last_used >= options_.pre_ping_idle_threshold) {
    return CheckoutVerdict::ping;
  }
  return CheckoutVerdict::use;
}

// A returned connection goes to a waiter only when the pool keeps
// connections at all (pool_size > 0); a null pool closes it and serves the
// waiter with a new connection.
inline Placement PoolLogic::place_usable(bool fresh) {
  if (closed_) {
    closed_one();
    return Placement::close;
  }
  if (waiters_ > 0 && (fresh || options_.pool_size > 0)) {
    --waiters_;
    ++in_use_;
    return Placement::hand_to_waiter;
  }
  if (idle_ < options_.pool_size) {
    ++idle_;
    return Placement::keep_idle;
  }
  closed_one();
  return Placement::close;
}

inline Placement PoolLogic::on_return(ReturnState state, const ConnectionTimes& times,
                                      Clock::time_point now) {
  --in_use_;
  switch (state) {
    case ReturnState::disconnected:
      invalidated_before_ = now;
      closed_one();
      return Placement::close;
    case ReturnState::broken:
      closed_one();
      return Placement::close;
    case ReturnState::busy:
    case ReturnState::in_transaction:
      if (closed_ || (state == ReturnState::in_transaction &&
                      options_.reset_on_return == ResetOnReturn::none)) {
        closed_one();
        return Placement::close;
      }
      ++cleaning_;
      ++stats_.cleanups;
      return Placement::clean_up;
    case ReturnState::clean:
      break;
  }
  if (times.created_at < invalidated_before_) {
    ++stats_.invalidated;
    closed_one();
    return Placement::close;
  }
  return place_usable();
}

}  // namespace sluice::db::detail
