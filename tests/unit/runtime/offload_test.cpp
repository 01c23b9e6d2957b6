#include <sluice/runtime/offload.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

namespace sluice::runtime {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Upper bound for any wait on another thread, so a broken test fails
// instead of hanging.
constexpr auto kMaxWait = 10s;

// Stores the exception that escaped a spawned coroutine.
struct CaptureError {
  std::exception_ptr* error;
  void operator()(std::exception_ptr e) const { *error = e; }
};

bool is_operation_aborted(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const boost::system::system_error& e) {
    return e.code() == asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

asio::awaitable<void> sleep_on_pool(BlockingPool& pool, std::chrono::milliseconds duration) {
  auto job = [duration] { std::this_thread::sleep_for(duration); };
  co_await offload(pool, job);
}

// Re-arms a 1 ms timer until `stop` is set and records the largest lateness.
asio::awaitable<void> measure_timer_lag(std::atomic<bool>& stop, Clock::duration& max_lag) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!stop.load()) {
    Clock::time_point due = Clock::now() + 1ms;
    timer.expires_at(due);
    co_await timer.async_wait(asio::use_awaitable);
    max_lag = std::max(max_lag, Clock::now() - due);
  }
}

asio::awaitable<void> run_jobs_and_stop(BlockingPool& pool, std::atomic<bool>& stop) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<std::exception_ptr> errors(4);
  std::atomic<int> finished = 0;
  asio::steady_timer all_done(ex, Clock::time_point::max());
  for (std::size_t i = 0; i < 4; ++i) {
    auto on_done = [&, i](std::exception_ptr e) {
      errors[i] = e;
      if (++finished == 4) {
        all_done.cancel();
      }
    };
    asio::co_spawn(ex, sleep_on_pool(pool, 300ms), on_done);
  }
  co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  stop.store(true);
  for (const auto& error : errors) {
    EXPECT_EQ(error, nullptr);
  }
}

TEST(Offload, LoopStaysResponsive) {
  asio::io_context io;
  BlockingPool pool(4, "responsive");
  std::atomic<bool> stop = false;
  Clock::duration max_lag{};
  std::exception_ptr lag_error;
  std::exception_ptr jobs_error;

  asio::co_spawn(io, measure_timer_lag(stop, max_lag), CaptureError{&lag_error});
  Clock::time_point start = Clock::now();
  asio::co_spawn(io, run_jobs_and_stop(pool, stop), CaptureError{&jobs_error});
  io.run();
  auto elapsed = Clock::now() - start;
  pool.join();

  EXPECT_EQ(lag_error, nullptr);
  EXPECT_EQ(jobs_error, nullptr);
  EXPECT_LT(max_lag, 20ms) << "max timer lag "
                           << std::chrono::duration_cast<std::chrono::microseconds>(max_lag).count()
                           << " us";
  // Four 300 ms jobs on four threads run in parallel.
  EXPECT_LT(elapsed, 1200ms);
  EXPECT_EQ(pool.completed(), 4u);
}

asio::awaitable<void> throw_on_pool(BlockingPool& pool, std::string& message) {
  try {
    auto job = []() -> int { throw std::runtime_error("disk on fire"); };
    co_await offload(pool, job);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
}

TEST(Offload, ExceptionPropagates) {
  asio::io_context io;
  BlockingPool pool(1);
  std::string message;
  std::exception_ptr error;

  asio::co_spawn(io, throw_on_pool(pool, message), CaptureError{&error});
  io.run();

  EXPECT_EQ(error, nullptr);
  EXPECT_EQ(message, "disk on fire");
  EXPECT_EQ(pool.completed(), 1u);
}

asio::awaitable<void> move_result_back(BlockingPool& pool, std::unique_ptr<std::string>& out,
                                       std::thread::id& job_thread, std::thread::id& resumed_thread) {
  auto job = [&job_thread] {
    job_thread = std::this_thread::get_id();
    return std::make_unique<std::string>("row 42");
  };
  out = co_await offload(pool, job);
  resumed_thread = std::this_thread::get_id();
}

TEST(Offload, MoveOnlyResultMovesBack) {
  asio::io_context io;
  BlockingPool pool(2);
  std::unique_ptr<std::string> result;
  std::thread::id job_thread;
  std::thread::id resumed_thread;
  std::exception_ptr error;

  asio::co_spawn(io, move_result_back(pool, result, job_thread, resumed_thread), CaptureError{&error});
  io.run();

  EXPECT_EQ(error, nullptr);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(*result, "row 42");
  EXPECT_NE(job_thread, std::this_thread::get_id());
  EXPECT_EQ(resumed_thread, std::this_thread::get_id());
}

asio::awaitable<void> run_void_job(BlockingPool& pool, bool& ran) {
  auto job = [&ran] { ran = true; };
  co_await offload(pool, job);
}

TEST(Offload, VoidResultCompletes) {
  asio::io_context io;
  BlockingPool pool(1);
  bool ran = false;
  std::exception_ptr error;

  asio::co_spawn(io, run_void_job(pool, ran), CaptureError{&error});
  io.run();

  EXPECT_EQ(error, nullptr);
  EXPECT_TRUE(ran);
}

asio::awaitable<int> square_on_pool(BlockingPool& pool, int value) {
  auto job = [value] {
    std::this_thread::sleep_for(20ms);
    return value * value;
  };
  co_return co_await offload(pool, job);
}

TEST(Offload, PoolJoinedBeforeLoopStops) {
  asio::io_context io;
  BlockingPool pool(2, "join-first");
  constexpr int kJobs = 8;
  std::vector<int> results(kJobs, -1);
  std::atomic<int> delivered = 0;

  for (int i = 0; i < kJobs; ++i) {
    auto store = [&results, &delivered, i](std::exception_ptr e, int value) {
      results[static_cast<std::size_t>(i)] = e ? -2 : value;
      ++delivered;
    };
    asio::co_spawn(io, square_on_pool(pool, i), store);
  }
  // Handlers run in FIFO order, so this one runs after every coroutine above
  // has reached offload() and queued its job.
  std::promise<void> submitted;
  asio::post(io, [&submitted] { submitted.set_value(); });
  std::thread loop([&io] { io.run(); });
  EXPECT_EQ(submitted.get_future().wait_for(kMaxWait), std::future_status::ready);

  // Shutdown order: join the pool while the loop still runs, then let the
  // loop finish delivering and return on its own.
  pool.join();
  loop.join();

  EXPECT_EQ(delivered.load(), kJobs);
  for (int i = 0; i < kJobs; ++i) {
    EXPECT_EQ(results[static_cast<std::size_t>(i)], i * i) << "job " << i;
  }
  EXPECT_EQ(pool.completed(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_EQ(pool.running(), 0u);
}

asio::awaitable<void> offload_after_join(BlockingPool& pool, std::string& message) {
  try {
    auto job = [] { return 1; };
    co_await offload(pool, job);
  } catch (const BlockingPoolClosedError& e) {
    message = e.what();
  }
}

TEST(Offload, ClosedPoolRejectsJobs) {
  asio::io_context io;
  BlockingPool pool(1, "closed");
  pool.join();
  std::string message;
  std::exception_ptr error;

  asio::co_spawn(io, offload_after_join(pool, message), CaptureError{&error});
  io.run();

  EXPECT_EQ(error, nullptr);
  EXPECT_NE(message.find("blocking pool `closed` is closed"), std::string::npos) << message;
}

TEST(Offload, CancelledQueuedJobNeverRuns) {
  asio::io_context io;
  BlockingPool pool(1, "cancel-queued");
  std::promise<void> release_first;
  std::shared_future<void> first_released = release_first.get_future().share();
  std::atomic<bool> second_ran = false;
  asio::cancellation_signal cancel_second;
  std::exception_ptr first_error;
  std::exception_ptr second_error;
  bool second_done = false;

  // The first job occupies the only thread and, once it runs, posts the
  // cancellation of the second job to the loop, so the second is still queued.
  auto first_job = [&io, &cancel_second, first_released] {
    asio::post(io, [&cancel_second] { cancel_second.emit(asio::cancellation_type::terminal); });
    first_released.wait_for(kMaxWait);
  };
  auto first = [&pool, first_job]() -> asio::awaitable<void> { co_await offload(pool, first_job); };
  auto second_job = [&second_ran] { second_ran = true; };
  auto second = [&pool, second_job]() -> asio::awaitable<void> { co_await offload(pool, second_job); };
  auto on_second_done = [&](std::exception_ptr e) {
    second_error = e;
    second_done = true;
    release_first.set_value();
  };

  asio::co_spawn(io, first, CaptureError{&first_error});
  asio::co_spawn(io, second, asio::bind_cancellation_slot(cancel_second.slot(), on_second_done));
  io.run();
  pool.join();

  EXPECT_EQ(first_error, nullptr);
  EXPECT_TRUE(second_done);
  EXPECT_TRUE(is_operation_aborted(second_error));
  EXPECT_FALSE(second_ran.load());
  EXPECT_EQ(pool.cancelled(), 1u);
  EXPECT_EQ(pool.completed(), 1u);
  EXPECT_EQ(pool.queued(), 0u);
}

asio::awaitable<void> offload_then_wait(BlockingPool& pool, asio::io_context& io,
                                        asio::cancellation_signal& signal, int& value) {
  auto job = [&io, &signal] {
    // The job is running, so the cancellation cannot drop it any more.
    std::promise<void> cancelled;
    auto emit = [&signal, &cancelled] {
      signal.emit(asio::cancellation_type::terminal);
      cancelled.set_value();
    };
    asio::post(io, emit);
    cancelled.get_future().wait_for(kMaxWait);
    return 7;
  };
  value = co_await offload(pool, job);

  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  co_await timer.async_wait(asio::use_awaitable);
  value = -1;  // not reached: the cancellation is seen at this co_await
}

TEST(Offload, CancelledRunningJobDeliversResult) {
  asio::io_context io;
  BlockingPool pool(1, "cancel-running");
  asio::cancellation_signal signal;
  int value = 0;
  std::exception_ptr error;

  asio::co_spawn(io, offload_then_wait(pool, io, signal, value),
                 asio::bind_cancellation_slot(signal.slot(), CaptureError{&error}));
  io.run();

  EXPECT_EQ(value, 7);
  EXPECT_TRUE(is_operation_aborted(error));
  EXPECT_EQ(pool.completed(), 1u);
  EXPECT_EQ(pool.cancelled(), 0u);
}

TEST(Offload, ZeroThreadsRejected) {
  EXPECT_THROW(BlockingPool(0, "empty"), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::runtime
