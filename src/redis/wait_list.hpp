#pragma once

#include <chrono>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::redis::detail {

using Clock = std::chrono::steady_clock;

class WaitList;

// One coroutine waiting in a WaitList; lives in the waiting coroutine's
// frame.
struct ListWaiter {
  ListWaiter(const boost::asio::any_io_executor& executor, Clock::time_point deadline)
      : timer(executor, deadline) {}
  ListWaiter(const ListWaiter&) = delete;
  ListWaiter& operator=(const ListWaiter&) = delete;
  ~ListWaiter();

  boost::asio::steady_timer timer;
  bool notified = false;
  WaitList* list = nullptr;
  ListWaiter* prev = nullptr;
  ListWaiter* next = nullptr;
};

/// Coroutines that wait for a condition to change (a connection came up,
/// capacity was freed, a task finished), woken in FIFO order. Waiters
/// re-check their condition after waking.
///
/// Single-threaded: every call runs on the executor of the waiters.
class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList();

  /// Waits until notified (returns true) or until `deadline` (returns
  /// false). Cancellation: throws `system_error(operation_aborted)`; a
  /// cancelled waiter that had just been picked by `notify_one` passes the
  /// notification on to the next waiter, so none is lost. The list must
  /// outlive the resumption of its waiters; destroying it unlinks them
  /// (which only happens when their frames are destroyed too, as in
  /// io_context shutdown).
  boost::asio::awaitable<bool> wait_until(boost::asio::any_io_executor executor, Clock::time_point deadline);

  /// Wakes the oldest waiter.
  void notify_one();
  void notify_all();

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

 private:
  friend struct ListWaiter;
  void link(ListWaiter& waiter);
  void unlink(ListWaiter& waiter) noexcept;

  ListWaiter* head_ = nullptr;
  ListWaiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace sluice::redis::detail
