#pragma once

// Helpers to run coroutine test bodies on a fresh io_context.

#include <chrono>
#include <exception>
#include <functional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

/// ASSERT_EQ for coroutine bodies (gtest's ASSERT_* use `return`).
#define SLUICE_CO_ASSERT_EQ(a, b) \
  do {                            \
    EXPECT_EQ(a, b);              \
    if (!((a) == (b))) {          \
      co_return;                  \
    }                             \
  } while (false)

namespace sluice::db::testing {

/// Maximum time a test body may run before the test fails.
inline constexpr auto kMaxWait = std::chrono::seconds{120};

/// Runs `body()` to completion on `ioc`, rethrowing what it throws.
template <class Body>
void run_on(boost::asio::io_context& ioc, Body&& body) {
  bool done = false;
  std::exception_ptr error;
  boost::asio::co_spawn(ioc, std::forward<Body>(body)(), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  ioc.run_for(kMaxWait);
  ASSERT_TRUE(done) << "test body did not finish within " << kMaxWait.count() << " s";
  if (error) {
    std::rethrow_exception(error);
  }
}

/// Counts running tasks; wait() resumes once the count drops to zero.
class WaitGroup {
 public:
  explicit WaitGroup(const boost::asio::any_io_executor& executor)
      : timer_(executor, std::chrono::steady_clock::time_point::max()) {}

  void add(int count = 1) { count_ += count; }
  void done() {
    if (--count_ == 0) {
      timer_.cancel();
    }
  }
  int count() const { return count_; }

  boost::asio::awaitable<void> wait() {
    while (count_ > 0) {
      boost::system::error_code ec;
      auto token = boost::asio::redirect_error(boost::asio::use_awaitable, ec);
      co_await timer_.async_wait(token);
    }
  }

 private:
  boost::asio::steady_timer timer_;
  int count_ = 0;
};

/// Waits `duration` on a timer (for tests whose subject is the passing of
/// time: recycle, idle timeout, backoff).
inline boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  auto executor = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(executor, duration);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

/// Lets every ready handler run once.
inline boost::asio::awaitable<void> yield_once() {
  auto executor = co_await boost::asio::this_coro::executor;
  co_await boost::asio::post(executor, boost::asio::use_awaitable);
}

}  // namespace sluice::db::testing
