#include "http/deadline.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::http::detail {

Deadline::Deadline(boost::asio::any_io_executor executor, std::function<void()> on_expire)
    : timer_(std::move(executor)), on_expire_(std::move(on_expire)) {}

void Deadline::expires_at(Clock::time_point deadline) {
  deadline_ = deadline;
  expired_ = false;
  if (!on_expire_) {
    return;
  }
  // A pending wait that ends later than the new deadline is restarted; one
  // that ends earlier re-checks the deadline when it wakes.
  if (!waiting_ || deadline < timer_.expiry()) {
    timer_.expires_at(deadline);
    start_wait();
  }
}

void Deadline::shutdown() {
  on_expire_ = nullptr;
  deadline_ = Clock::time_point::max();
  timer_.cancel();
}

void Deadline::start_wait() {
  waiting_ = true;
  timer_.async_wait([self = shared_from_this()](boost::system::error_code const& error) {
    self->on_timer(error);
  });
}

void Deadline::on_timer(boost::system::error_code const& error) {
  // A wait aborted by a re-arm has a successor already; one aborted by
  // shutdown() has nothing left to do.
  if (error || !on_expire_) {
    return;
  }
  waiting_ = false;
  if (deadline_ == Clock::time_point::max()) {
    return;
  }
  if (Clock::now() < deadline_) {
    timer_.expires_at(deadline_);
    start_wait();
    return;
  }
  deadline_ = Clock::time_point::max();
  expired_ = true;
  on_expire_();
}

Event::Event(boost::asio::any_io_executor executor) : timer_(std::move(executor)) {
  timer_.expires_at(boost::asio::steady_timer::time_point::max());
}

boost::asio::awaitable<void> Event::wait() {
  // cancel() leaves the expiry at max, so every wait pends until the next
  // notify_all().
  constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  co_await timer_.async_wait(use_tuple);
}

}  // namespace sluice::http::detail
