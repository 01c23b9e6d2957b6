#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::http::detail {

/// Runs a callback once when a moving deadline passes, with one timer.
///
/// Connections set a deadline before every read or write. Moving the
/// deadline later only stores the new time (the pending wait notices it when
/// it wakes), so a request costs at most one timer re-arm instead of one per
/// phase. Single-threaded: use it on its executor only.
class Deadline : public std::enable_shared_from_this<Deadline> {
 public:
  using Clock = std::chrono::steady_clock;

  /// `on_expire` runs on the executor when the deadline passes; it usually
  /// cancels or closes a socket. Call `shutdown()` before whatever it refers
  /// to is destroyed.
  Deadline(boost::asio::any_io_executor executor, std::function<void()> on_expire);

  void expires_at(Clock::time_point deadline);
  void expires_after(Clock::duration duration) { expires_at(Clock::now() + duration); }

  /// Removes the deadline; the callback does not run until a new one is set.
  void clear() {
    deadline_ = Clock::time_point::max();
    expired_ = false;
  }

  /// Returns true if the callback ran since the last `expires_at()`.
  bool expired() const { return expired_; }

  /// Forgets the callback and cancels the timer; later calls do nothing.
  void shutdown();

 private:
  void start_wait();
  void on_timer(boost::system::error_code const& error);

  boost::asio::steady_timer timer_;
  std::function<void()> on_expire_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool waiting_ = false;
  bool expired_ = false;
};

/// A broadcast wake-up for coroutines on one executor: `wait()` suspends
/// until the next `notify_all()`. Waiters re-check their condition in a loop,
/// because a wake-up carries no state. Cancellation: a cancelled `wait()`
/// returns like a notified one; the caller checks its cancellation state.
class Event {
 public:
  explicit Event(boost::asio::any_io_executor executor);
  boost::asio::awaitable<void> wait();
  void notify_all() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

}  // namespace sluice::http::detail
