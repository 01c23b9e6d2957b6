#include "redis/wait_list.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

namespace sluice::redis::detail {

namespace asio = boost::asio;

ListWaiter::~ListWaiter() {
  if (list != nullptr) {
    list->unlink(*this);
  }
}

WaitList::~WaitList() {
  while (head_ != nullptr) {
    unlink(*head_);
  }
}

void WaitList::link(ListWaiter& waiter) {
  waiter.list = this;
  waiter.prev = tail_;
  waiter.next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = &waiter;
  } else {
    head_ = &waiter;
  }
  tail_ = &waiter;
  ++size_;
}

void WaitList::unlink(ListWaiter& waiter) noexcept {
  if (waiter.prev != nullptr) {
    waiter.prev->next = waiter.next;
  } else {
    head_ = waiter.next;
  }
  if (waiter.next != nullptr) {
    waiter.next->prev = waiter.prev;
  } else {
    tail_ = waiter.prev;
  }
  waiter.list = nullptr;
  waiter.prev = nullptr;
  waiter.next = nullptr;
  --size_;
}

asio::awaitable<bool> WaitList::wait_until(asio::any_io_executor executor, Clock::time_point deadline) {
  ListWaiter waiter(executor, deadline);
  link(waiter);

  boost::system::error_code ec;
  co_await waiter.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));

  if (waiter.list != nullptr) {
    unlink(waiter);
  }
  asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  bool cancelled = state.cancelled() != asio::cancellation_type::none;
  if (cancelled) {
    if (waiter.notified) {
      // The notification picked this waiter, which no longer wants it.
      notify_one();
    }
    throw boost::system::system_error(asio::error::operation_aborted);
  }
  if (waiter.notified) {
    co_return true;
  }
  if (ec == asio::error::operation_aborted) {
    throw boost::system::system_error(asio::error::operation_aborted);
  }
  co_return false;
}

void WaitList::notify_one() {
  if (head_ == nullptr) {
    return;
  }
  ListWaiter& waiter = *head_;
  unlink(waiter);
  waiter.notified = true;
  waiter.timer.cancel();
}

void WaitList::notify_all() {
  while (head_ != nullptr) {
    notify_one();
  }
}

}  // namespace sluice::redis::detail
