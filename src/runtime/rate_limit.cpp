#include <sluice/runtime/rate_limit.hpp>

#include <cmath>
#include <stdexcept>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace sluice::runtime {
namespace detail {

Gcra::Gcra(double rate_per_second, std::size_t burst, const char* owner)
    : rate_per_second_(rate_per_second), burst_(burst), owner_(owner) {
  if (!std::isfinite(rate_per_second) || rate_per_second <= 0.0) {
    throw std::invalid_argument(fmt::format(
        "{}: rate must be a finite number of requests per second above 0, got {}", owner,
        rate_per_second));
  }
  if (burst == 0) {
    throw std::invalid_argument(fmt::format("{}: burst must be at least 1, got 0", owner));
  }

  auto interval = std::chrono::duration_cast<RateClock::duration>(
      std::chrono::duration<double>(1.0 / rate_per_second));
  interval_ = std::max(interval, RateClock::duration(1));
}

void Gcra::check_cells(std::size_t cells) const {
  if (cells == 0 || cells > burst_) {
    throw std::invalid_argument(fmt::format(
        "{}: a request for {} tokens can never be granted with burst {}; request 1 to {}",
        owner_, cells, burst_, burst_));
  }
}

}  // namespace detail

TokenBucket::TokenBucket(double rate_per_second, std::size_t burst)
    : gcra_(rate_per_second, burst, "TokenBucket") {}

boost::asio::awaitable<void> TokenBucket::acquire(std::size_t tokens) {
  RateClock::duration wait = reserve(RateClock::now(), tokens);
  if (wait <= RateClock::duration::zero()) {
    co_return;
  }

  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, wait);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace sluice::runtime
