#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <unordered_map>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace sluice::runtime {

/// The clock of every rate limiter. The limiters never read it themselves
/// (except `TokenBucket::acquire()`): callers pass `now`, so tests run them
/// on simulated time.
using RateClock = std::chrono::steady_clock;

/// The result of one acquisition attempt.
struct RateDecision {
  /// True when the request may proceed now.
  bool allowed = false;
  /// When not allowed, how long to wait before the same request is allowed;
  /// zero when allowed.
  RateClock::duration retry_after{};

  explicit operator bool() const noexcept { return allowed; }
};

namespace detail {

/// The generic cell rate algorithm (virtual scheduling form) for one stream
/// of requests: a request of `n` cells at time `t` is allowed when the
/// theoretical arrival time (TAT) after it, `max(tat, t) + n * interval`, is
/// at most `burst * interval` ahead of `t`. An allowed request moves TAT
/// there. This is a token bucket with integer-nanosecond arithmetic, so it
/// does not drift over long runs.
class Gcra {
 public:
  /// Throws std::invalid_argument unless `rate_per_second` is finite and
  /// positive and `burst >= 1`. `owner` names the limiter in the message.
  Gcra(double rate_per_second, std::size_t burst, const char* owner);

  double rate_per_second() const noexcept { return rate_per_second_; }
  std::size_t burst() const noexcept { return burst_; }
  /// The time between two requests at the sustained rate.
  RateClock::duration emission_interval() const noexcept { return interval_; }

  /// Applies one request to `tat` and returns the decision.
  RateDecision try_acquire(RateClock::time_point& tat, RateClock::time_point now,
                           std::size_t cells) const {
    check_cells(cells);
    RateClock::time_point next = std::max(tat, now) + cost(cells);
    RateClock::time_point allowed_at = next - capacity();
    if (now < allowed_at) {
      return {.allowed = false, .retry_after = allowed_at - now};
    }
    tat = next;
    return {.allowed = true, .retry_after = {}};
  }

  /// Returns how long until `cells` would be allowed; zero when they would be
  /// allowed now.
  RateClock::duration time_until_available(RateClock::time_point tat, RateClock::time_point now,
                                           std::size_t cells) const {
    check_cells(cells);
    RateClock::time_point allowed_at = std::max(tat, now) + cost(cells) - capacity();
    return now < allowed_at ? allowed_at - now : RateClock::duration::zero();
  }

  /// Takes `cells` unconditionally and returns how long the caller must wait
  /// before using them (zero when they are available now).
  RateClock::duration reserve(RateClock::time_point& tat, RateClock::time_point now,
                              std::size_t cells) const {
    check_cells(cells);
    tat = std::max(tat, now) + cost(cells);
    RateClock::time_point usable_at = tat - capacity();
    return now < usable_at ? usable_at - now : RateClock::duration::zero();
  }

  /// Moves `tat` so that nothing is allowed before `until`: one cell is
  /// available at `until`, and the burst refills from there at the rate.
  void pause_until(RateClock::time_point& tat, RateClock::time_point until) const {
    tat = std::max(tat, until + capacity() - interval_);
  }

  /// Returns the tokens available at `now`, between 0 and `burst()`.
  double available(RateClock::time_point tat, RateClock::time_point now) const {
    RateClock::duration headroom = now + capacity() - std::max(tat, now);
    double tokens = static_cast<double>(headroom.count()) / static_cast<double>(interval_.count());
    return std::max(tokens, 0.0);
  }

 private:
  void check_cells(std::size_t cells) const;
  RateClock::duration cost(std::size_t cells) const noexcept {
    return interval_ * static_cast<RateClock::rep>(cells);
  }
  RateClock::duration capacity() const noexcept { return cost(burst_); }

  double rate_per_second_;
  std::size_t burst_;
  RateClock::duration interval_;
  const char* owner_;
};

}  // namespace detail

/// A token bucket: on average `rate_per_second` tokens per second, and up to
/// `burst` at once after an idle period. Starts full.
///
/// Pure logic: every call takes the current time, so the bucket can be
/// tested on a simulated clock. `acquire()` is the one member that reads the
/// clock and waits on a timer.
///
/// Thread safety: none; use it from one thread (the event loop).
class TokenBucket {
 public:
  /// Throws std::invalid_argument unless `rate_per_second` is finite and
  /// positive and `burst >= 1`.
  TokenBucket(double rate_per_second, std::size_t burst);

  /// Takes `tokens` if they are available at `now`; otherwise takes nothing
  /// and returns the wait. Throws std::invalid_argument if `tokens` is 0 or
  /// more than `burst()`, because such a request can never succeed.
  RateDecision try_acquire(RateClock::time_point now, std::size_t tokens = 1) {
    return gcra_.try_acquire(tat_, now, tokens);
  }

  /// Returns how long until `tokens` are available; zero when they are now.
  RateClock::duration time_until_available(RateClock::time_point now,
                                           std::size_t tokens = 1) const {
    return gcra_.time_until_available(tat_, now, tokens);
  }

  /// Takes `tokens` now, possibly from the future, and returns how long the
  /// caller must wait before using them. Reservations queue in call order,
  /// so waiters are served first come, first served. A reservation that is
  /// not used is not returned: the bucket then admits fewer tokens than its
  /// rate, never more.
  RateClock::duration reserve(RateClock::time_point now, std::size_t tokens = 1) {
    return gcra_.reserve(tat_, now, tokens);
  }

  /// Allows nothing before `until`: one token is available at `until`, and
  /// the burst refills from there at the rate. Used to honour a server's
  /// "retry after" reply.
  void pause_until(RateClock::time_point until) { gcra_.pause_until(tat_, until); }

  /// Returns the tokens available at `now` (fractional, 0 to `burst()`).
  double available(RateClock::time_point now) const { return gcra_.available(tat_, now); }

  double rate_per_second() const noexcept { return gcra_.rate_per_second(); }
  std::size_t burst() const noexcept { return gcra_.burst(); }

  /// Reserves `tokens` (see `reserve()`) and waits on a steady timer of the
  /// calling coroutine's executor until they are usable.
  ///
  /// Ordering: callers are served in the order they call `acquire()`.
  /// Cancellation: the wait ends with `operation_aborted`; the reservation
  /// is not returned. Lifetimes: the bucket is used only before the wait,
  /// so it need not outlive it. Errors: std::invalid_argument as for
  /// `try_acquire()`.
  boost::asio::awaitable<void> acquire(std::size_t tokens = 1);

 private:
  detail::Gcra gcra_;
  RateClock::time_point tat_{};
};

/// GCRA rate limiting per key (for example per chat): each key may make
/// `rate_per_second` requests per second on average with bursts of up to
/// `burst`. Keys are independent.
///
/// Memory: a key whose theoretical arrival time has passed has its full
/// burst again, so it is the same as an unknown key and can be removed.
/// Each `try_acquire()` scans a few hash buckets and removes such idle keys,
/// so the table contains about the keys active within the last `burst /
/// rate_per_second` seconds plus a lag of up to one sweep over the table.
/// `evict_idle()` removes all idle keys at once.
///
/// Pure logic: every call takes the current time. Thread safety: none.
template <class Key, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class KeyedGcra {
 public:
  /// Throws std::invalid_argument unless `rate_per_second` is finite and
  /// positive and `burst >= 1`.
  KeyedGcra(double rate_per_second, std::size_t burst)
      : gcra_(rate_per_second, burst, "KeyedGcra") {}

  /// Admits one request for `key` at `now`, or returns the wait.
  RateDecision try_acquire(const Key& key, RateClock::time_point now) {
    evict_some(now);

    auto found = tat_.find(key);
    if (found != tat_.end()) {
      return gcra_.try_acquire(found->second, now, 1);
    }
    RateClock::time_point tat{};
    RateDecision decision = gcra_.try_acquire(tat, now, 1);
    if (decision.allowed) {
      tat_.emplace(key, tat);
    }
    return decision;
  }

  /// Returns how long until a request for `key` would be allowed.
  RateClock::duration time_until_available(const Key& key, RateClock::time_point now) const {
    auto found = tat_.find(key);
    RateClock::time_point tat = found != tat_.end() ? found->second : RateClock::time_point{};
    return gcra_.time_until_available(tat, now, 1);
  }

  /// Allows no request for `key` before `until`: one is allowed at `until`,
  /// and the burst refills from there at the rate.
  void pause_until(const Key& key, RateClock::time_point until) {
    gcra_.pause_until(tat_[key], until);
  }

  /// Removes every idle key and returns how many were removed. O(size()).
  std::size_t evict_idle(RateClock::time_point now) {
    return std::erase_if(tat_, [now](const auto& entry) { return entry.second <= now; });
  }

  /// The number of keys stored now.
  std::size_t size() const noexcept { return tat_.size(); }

  double rate_per_second() const noexcept { return gcra_.rate_per_second(); }
  std::size_t burst() const noexcept { return gcra_.burst(); }

 private:
  // Buckets scanned per request. Two keep the table within about twice the
  // number of active keys, because the table has about one bucket per key and
  // a full sweep then takes about size() / 2 requests.
  static constexpr std::size_t kBucketsPerSweep = 2;

  void evict_some(RateClock::time_point now) {
    std::size_t buckets = tat_.bucket_count();
    if (buckets == 0) {
      return;
    }
    for (std::size_t step = 0; step < kBucketsPerSweep; ++step) {
      sweep_cursor_ = (sweep_cursor_ + 1) % buckets;
      for (auto it = tat_.begin(sweep_cursor_); it != tat_.end(sweep_cursor_); ++it) {
        if (it->second <= now) {
          idle_keys_.push_back(it->first);
        }
      }
    }
    for (const Key& key : idle_keys_) {
      tat_.erase(key);
    }
    idle_keys_.clear();
  }

  detail::Gcra gcra_;
  std::unordered_map<Key, RateClock::time_point, Hash, KeyEqual> tat_;
  std::size_t sweep_cursor_ = 0;
  std::vector<Key> idle_keys_;  // reused so that a sweep does not allocate
};

}  // namespace sluice::runtime
