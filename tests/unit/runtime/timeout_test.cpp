#include <sluice/runtime/timeout.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

#include <sluice/runtime/offload.hpp>

namespace sluice::runtime {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::int64_t to_ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// A move-only result that owns a resource: `live` counts the instances that
// still own it, so a result dropped on the floor is visible.
class Counted {
 public:
  Counted(int value, std::atomic<int>& live) : value_(value), live_(&live) { ++*live_; }
  Counted(Counted&& other) noexcept : value_(other.value_), live_(std::exchange(other.live_, nullptr)) {}
  Counted& operator=(Counted&&) = delete;
  Counted(const Counted&) = delete;
  ~Counted() {
    if (live_ != nullptr) {
      --*live_;
    }
  }

  int value() const { return value_; }

 private:
  int value_;
  std::atomic<int>* live_;
};

// Runs `task` on a fresh loop and returns the exception that escaped it.
template <class Task>
std::exception_ptr run_on_loop(Task task) {
  asio::io_context io;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&error](std::exception_ptr e) { error = e; });
  io.run();
  return error;
}

asio::awaitable<int> value_after(Clock::duration delay, int value) {
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  co_await timer.async_wait(asio::use_awaitable);
  co_return value;
}

asio::awaitable<void> expect_timeout(Clock::duration& elapsed, std::optional<TimeoutError>& caught) {
  Clock::time_point start = Clock::now();
  try {
    co_await with_timeout(20ms, value_after(5s, 1));
  } catch (const TimeoutError& e) {
    caught = e;
  }
  elapsed = Clock::now() - start;
}

TEST(WithTimeout, TimerWinsThrowsTimeoutError) {
  Clock::duration elapsed{};
  std::optional<TimeoutError> caught;

  std::exception_ptr error = run_on_loop(expect_timeout(elapsed, caught));

  EXPECT_EQ(error, nullptr);
  ASSERT_TRUE(caught.has_value());
  EXPECT_EQ(caught->code(), asio::error::timed_out);
  EXPECT_EQ(to_ms(caught->limit()), 20);
  EXPECT_STREQ(caught->what(), "operation timed out after 20 ms");
  // The operation was cancelled, not waited for.
  EXPECT_LT(elapsed, 1s) << to_ms(elapsed) << " ms";
}

asio::awaitable<void> expect_value(int& value, Clock::duration& elapsed) {
  Clock::time_point start = Clock::now();
  value = co_await with_timeout(5s, value_after(1ms, 42));
  elapsed = Clock::now() - start;
}

TEST(WithTimeout, OperationWinsReturnsValue) {
  int value = 0;
  Clock::duration elapsed{};

  std::exception_ptr error = run_on_loop(expect_value(value, elapsed));

  EXPECT_EQ(error, nullptr);
  EXPECT_EQ(value, 42);
  // The timer was cancelled, so the loop did not wait for it.
  EXPECT_LT(elapsed, 1s) << to_ms(elapsed) << " ms";
}

asio::awaitable<int> throw_after_wait() {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  co_await timer.async_wait(asio::use_awaitable);
  throw std::runtime_error("upstream closed the connection");
}

asio::awaitable<void> expect_operation_error(std::string& message) {
  try {
    co_await with_timeout(5s, throw_after_wait());
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
}

TEST(WithTimeout, OperationErrorPropagates) {
  std::string message;

  std::exception_ptr error = run_on_loop(expect_operation_error(message));

  EXPECT_EQ(error, nullptr);
  EXPECT_EQ(message, "upstream closed the connection");
}

asio::awaitable<void> wait_void(Clock::duration delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  co_await timer.async_wait(asio::use_awaitable);
}

asio::awaitable<void> run_void_operations(bool& finished, bool& timed_out) {
  co_await with_timeout(5s, wait_void(1ms));
  finished = true;
  try {
    co_await with_timeout(10ms, wait_void(5s));
  } catch (const TimeoutError&) {
    timed_out = true;
  }
}

TEST(WithTimeout, VoidOperationSupported) {
  bool finished = false;
  bool timed_out = false;

  std::exception_ptr error = run_on_loop(run_void_operations(finished, timed_out));

  EXPECT_EQ(error, nullptr);
  EXPECT_TRUE(finished);
  EXPECT_TRUE(timed_out);
}

// The blocking job ignores cancellation, so it finishes after the timer.
asio::awaitable<Counted> late_counted(BlockingPool& pool, std::atomic<int>& live) {
  auto job = [&live] {
    std::this_thread::sleep_for(100ms);
    return Counted(7, live);
  };
  co_return co_await offload(pool, job);
}

asio::awaitable<void> expect_late_value(BlockingPool& pool, std::atomic<int>& live, int& value,
                                        int& live_while_held) {
  Counted result = co_await with_timeout(10ms, late_counted(pool, live));
  value = result.value();
  live_while_held = live.load();
}

TEST(WithTimeout, LateResultIsNotLost) {
  BlockingPool pool(1, "late-result");
  std::atomic<int> live = 0;
  int value = 0;
  int live_while_held = 0;

  std::exception_ptr error = run_on_loop(expect_late_value(pool, live, value, live_while_held));
  pool.join();

  EXPECT_EQ(error, nullptr);
  EXPECT_EQ(value, 7);
  EXPECT_EQ(live_while_held, 1);
  EXPECT_EQ(live.load(), 0);
}

// Completes at exactly the deadline's time point, so the operation's timer
// and the timeout's timer are ready in the same reactor pass.
asio::awaitable<Counted> counted_at(Clock::time_point when, std::atomic<int>& live) {
  asio::steady_timer timer(co_await asio::this_coro::executor, when);
  co_await timer.async_wait(asio::use_awaitable);
  co_return Counted(9, live);
}

asio::awaitable<void> race_at_same_time(std::atomic<int>& live, int& values, int& timeouts) {
  for (int i = 0; i < 50; ++i) {
    Deadline deadline = Deadline::after(2ms);
    try {
      Counted result = co_await with_deadline(deadline, counted_at(deadline.time_point(), live));
      values += result.value() == 9 ? 1 : 0;
    } catch (const TimeoutError&) {
      ++timeouts;
    }
  }
}

TEST(WithTimeout, SimultaneousResultIsNotLost) {
  std::atomic<int> live = 0;
  int values = 0;
  int timeouts = 0;

  std::exception_ptr error = run_on_loop(race_at_same_time(live, values, timeouts));

  EXPECT_EQ(error, nullptr);
  EXPECT_EQ(values, 50);
  EXPECT_EQ(timeouts, 0);
  EXPECT_EQ(live.load(), 0);
}

asio::awaitable<void> await_with_timeout(bool& timed_out) {
  try {
    co_await with_timeout(5s, value_after(5s, 1));
  } catch (const TimeoutError&) {
    timed_out = true;
    throw;
  }
}

TEST(WithTimeout, CancelledAwaiterGetsOperationAborted) {
  asio::io_context io;
  asio::cancellation_signal signal;
  bool timed_out = false;
  std::exception_ptr error;

  asio::co_spawn(io, await_with_timeout(timed_out),
                 asio::bind_cancellation_slot(signal.slot(), [&error](std::exception_ptr e) { error = e; }));
  asio::steady_timer cancel_timer(io, 10ms);
  cancel_timer.async_wait([&signal](boost::system::error_code) {
    signal.emit(asio::cancellation_type::terminal);
  });
  Clock::time_point start = Clock::now();
  io.run();

  EXPECT_FALSE(timed_out);
  ASSERT_NE(error, nullptr);
  try {
    std::rethrow_exception(error);
  } catch (const boost::system::system_error& e) {
    EXPECT_EQ(e.code(), asio::error::operation_aborted) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception: " << e.what();
  }
  EXPECT_LT(Clock::now() - start, 1s);
}

asio::awaitable<void> await_never(int& value) {
  value = co_await with_deadline(Deadline::never(), value_after(1ms, 5));
}

TEST(WithDeadline, NeverAwaitsDirectly) {
  int value = 0;

  std::exception_ptr error = run_on_loop(await_never(value));

  EXPECT_EQ(error, nullptr);
  EXPECT_EQ(value, 5);
}

TEST(Deadline, RemainingClampsAtZero) {
  Clock::time_point now = Clock::time_point{} + 100h;
  Deadline deadline = Deadline::after(250ms, now);

  EXPECT_EQ(deadline.remaining(now), 250ms);
  EXPECT_EQ(deadline.remaining(now + 100ms), 150ms);
  EXPECT_EQ(deadline.remaining(now + 1s), Clock::duration::zero());
  EXPECT_FALSE(deadline.expired(now + 249ms));
  EXPECT_TRUE(deadline.expired(now + 250ms));
}

TEST(Deadline, NeverHasNoLimit) {
  Deadline never = Deadline::never();

  EXPECT_TRUE(never.is_never());
  EXPECT_EQ(never.remaining(), Clock::duration::max());
  EXPECT_FALSE(never.expired(Clock::time_point::max() - 1h));
  EXPECT_EQ(Deadline(), never);
}

TEST(Deadline, EarlierPicksSooner) {
  Clock::time_point now = Clock::time_point{} + 100h;
  Deadline soon = Deadline::after(1s, now);
  Deadline late = Deadline::after(5s, now);

  EXPECT_EQ(soon.earlier(late), soon);
  EXPECT_EQ(late.earlier(soon), soon);
  EXPECT_EQ(Deadline::never().earlier(late), late);
  EXPECT_LT(soon, late);
}

}  // namespace
}  // namespace sluice::runtime
