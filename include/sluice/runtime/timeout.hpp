#pragma once

#include <chrono>
#include <compare>
#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <sluice/runtime/detail/outcome.hpp>

namespace sluice::runtime {

/// Thrown by `with_timeout()` and `with_deadline()` when the time ran out
/// before the operation produced a value.
///
/// It derives from std::runtime_error rather than boost::system::system_error
/// because system_error appends the text of ETIMEDOUT ("Connection timed
/// out") to every message, which is wrong for most operations. `code()`
/// still returns `boost::asio::error::timed_out` for code that maps
/// exceptions to error codes.
class TimeoutError : public std::runtime_error {
 public:
  explicit TimeoutError(std::chrono::steady_clock::duration limit);

  /// The time the operation was given.
  std::chrono::steady_clock::duration limit() const noexcept { return limit_; }

  /// Returns `boost::asio::error::timed_out`.
  boost::system::error_code code() const noexcept { return boost::asio::error::timed_out; }

 private:
  std::chrono::steady_clock::duration limit_;
};

/// A point in time on the steady clock by which work must finish, or
/// "never". Pass it down through calls, so nested operations share one
/// budget instead of each starting a fresh timeout, and convert it to a
/// remaining duration where an API wants one.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  /// A deadline that never expires.
  constexpr Deadline() noexcept = default;

  static constexpr Deadline never() noexcept { return Deadline(); }
  static constexpr Deadline at(Clock::time_point when) noexcept { return Deadline(when); }
  /// The deadline `timeout` from `now`.
  static Deadline after(Clock::duration timeout, Clock::time_point now = Clock::now()) noexcept {
    return Deadline(now + timeout);
  }

  constexpr bool is_never() const noexcept { return when_ == Clock::time_point::max(); }
  /// The deadline; `Clock::time_point::max()` for `never()`.
  constexpr Clock::time_point time_point() const noexcept { return when_; }

  /// Returns the time left at `now`: zero once expired, `Clock::duration::max()`
  /// for `never()`.
  Clock::duration remaining(Clock::time_point now = Clock::now()) const noexcept {
    if (is_never()) {
      return Clock::duration::max();
    }
    return when_ > now ? when_ - now : Clock::duration::zero();
  }

  bool expired(Clock::time_point now = Clock::now()) const noexcept {
    return !is_never() && when_ <= now;
  }

  /// Returns the earlier of the two deadlines.
  constexpr Deadline earlier(Deadline other) const noexcept {
    return other.when_ < when_ ? other : *this;
  }

  friend constexpr auto operator<=>(const Deadline&, const Deadline&) noexcept = default;

 private:
  constexpr explicit Deadline(Clock::time_point when) noexcept : when_(when) {}

  Clock::time_point when_ = Clock::time_point::max();
};

namespace detail {

// Runs `op` and returns its value or exception as an Outcome, so that
// co_spawn never needs a default-constructed T and no result is thrown away.
template <class T>
boost::asio::awaitable<Outcome<T>> capture_outcome(boost::asio::awaitable<T> op) {
  Outcome<T> outcome;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(op);
      outcome.set_value();
    } else {
      outcome.set_value(co_await std::move(op));
    }
  } catch (...) {
    outcome.set_exception(std::current_exception());
  }
  co_return outcome;
}

// Races `op` against a timer; `limit` is the time reported in TimeoutError.
template <class T>
boost::asio::awaitable<T> race_deadline(Deadline deadline, Deadline::Clock::duration limit,
                                        boost::asio::awaitable<T> op) {
  namespace asio = boost::asio;

  if (deadline.is_never()) {
    co_return co_await std::move(op);
  }

  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline.time_point());

  auto op_task = asio::co_spawn(executor, detail::capture_outcome(std::move(op)), asio::deferred);
  auto timer_task = timer.async_wait(asio::deferred);
  auto group = asio::experimental::make_parallel_group(std::move(op_task), std::move(timer_task));
  asio::experimental::wait_for_one first_completion;
  auto [order, spawn_error, outcome, timer_error] =
      co_await std::move(group).async_wait(first_completion, asio::use_awaitable);

  // capture_outcome catches everything, so spawn_error is set only if the
  // coroutine could not run at all.
  if (spawn_error) {
    std::rethrow_exception(spawn_error);
  }
  if (outcome.has_value()) {
    co_return outcome.take();
  }

  // The timer completing without an error means the deadline passed; a
  // cancelled timer (the awaiter was cancelled) reports operation_aborted.
  bool timer_fired_first = order[0] == 1 && !timer_error;
  if (timer_fired_first) {
    throw TimeoutError(limit);
  }
  co_return outcome.take();
}

}  // namespace detail

/// Runs `op` until `deadline`. If the deadline passes first, `op` is
/// cancelled (terminal cancellation through its cancellation slot), its end
/// is awaited, and `TimeoutError` is thrown.
///
/// No result is lost: when `op` produces a value, that value is returned,
/// even if the timer fired in the same turn or `op` ignored the
/// cancellation and finished later. This differs from Asio's awaitable
/// `operator||`, which discards the losing side's result. Results that own
/// resources should still be move-only RAII types, as everywhere.
///
/// Executor: `op` runs as a separate coroutine on the calling coroutine's
/// executor, and so does the timer.
/// Cancellation: cancelling the awaiting coroutine cancels `op` and the
/// timer, awaits both, and rethrows what `op` ended with (usually
/// `system_error(operation_aborted)`), or returns its value if it had one.
/// Errors: `TimeoutError` when the deadline passed first and `op` ended
/// with an exception; otherwise `op`'s own exception.
/// Lifetimes: this call completes only after `op` has finished, so objects
/// that `op` refers to only need to outlive this call.
/// `Deadline::never()` awaits `op` directly, with no timer.
template <class T>
boost::asio::awaitable<T> with_deadline(Deadline deadline, boost::asio::awaitable<T> op) {
  Deadline::Clock::duration limit = deadline.remaining();
  // A named local, so that no temporary lives across the co_await (g++ 12
  // may destroy such temporaries twice).
  boost::asio::awaitable<T> bounded = detail::race_deadline(deadline, limit, std::move(op));
  co_return co_await std::move(bounded);
}

/// Runs `op` for at most `timeout`, measured from when the returned
/// awaitable is first awaited. See `with_deadline()` for the semantics.
template <class T, class Rep, class Period>
boost::asio::awaitable<T> with_timeout(std::chrono::duration<Rep, Period> timeout,
                                       boost::asio::awaitable<T> op) {
  Deadline deadline =
      Deadline::after(std::chrono::duration_cast<Deadline::Clock::duration>(timeout));
  boost::asio::awaitable<T> bounded = detail::race_deadline(
      deadline, std::chrono::duration_cast<Deadline::Clock::duration>(timeout), std::move(op));
  co_return co_await std::move(bounded);
}

}  // namespace sluice::runtime
