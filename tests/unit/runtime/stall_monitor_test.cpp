#include <sluice/runtime/stall_monitor.hpp>

#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <sluice/runtime/task_name.hpp>
#include <sluice/runtime/task_set.hpp>

namespace sluice::runtime {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Collects reports from the watchdog thread.
class ReportLog {
 public:
  std::function<void(const StallReport&)> callback() {
    return [this](const StallReport& report) {
      std::lock_guard lock(mutex_);
      reports_.push_back(report);
    };
  }

  std::vector<StallReport> reports() {
    std::lock_guard lock(mutex_);
    return reports_;
  }

 private:
  std::mutex mutex_;
  std::vector<StallReport> reports_;
};

// Options for tests: no environment, so SLUICE_ASYNC_DEBUG in the caller's
// shell does not change the thresholds.
StallMonitorOptions test_options(ReportLog& log) {
  return {
      .slow_callback_threshold = 100ms,
      .heartbeat_interval = 10ms,
      .report_burst = 5,
      .report_interval = 12s,
      .capture_backtrace = false,
      .log_unblocked = true,
      .use_environment = false,
      .loop_name = "test",
      .on_stall = log.callback(),
  };
}

asio::awaitable<void> wait_for(Clock::duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

// Lets the heartbeat run, then blocks the loop thread.
asio::awaitable<void> block_loop(std::chrono::milliseconds duration) {
  co_await wait_for(50ms);
  std::this_thread::sleep_for(duration);
}

// Waits for the tasks, gives the heartbeat a few beats so that the end of
// the stall is seen, then stops the monitor so that the loop can finish.
asio::awaitable<void> finish(TaskSet& tasks, StallMonitor& monitor) {
  co_await tasks.join();
  co_await wait_for(50ms);
  monitor.stop();
}

void run_monitored(asio::io_context& io, TaskSet& tasks, StallMonitor& monitor) {
  monitor.start();
  std::exception_ptr error;
  asio::co_spawn(io, finish(tasks, monitor), [&error](std::exception_ptr e) { error = e; });
  io.run();
  EXPECT_EQ(error, nullptr);
}

TEST(StallMonitor, ReportsBlockedTaskOnce) {
  asio::io_context io;
  ReportLog log;
  StallMonitor monitor(io, test_options(log));
  TaskSet tasks(io.get_executor(), "stall-test");

  tasks.spawn("slow", block_loop(250ms));
  run_monitored(io, tasks, monitor);

  std::vector<StallReport> reports = log.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].task, "slow");
  EXPECT_GE(reports[0].blocked_for, 100ms) << reports[0].blocked_for.count() << " ms";
  EXPECT_LT(reports[0].blocked_for, 250ms) << reports[0].blocked_for.count() << " ms";
  EXPECT_EQ(reports[0].stall_number, 1u);
  EXPECT_EQ(reports[0].suppressed, 0u);
  EXPECT_TRUE(reports[0].backtrace.empty());
  EXPECT_EQ(monitor.stalls_total(), 1u);
}

TEST(StallMonitor, NamesScopeOutsideTaskSet) {
  asio::io_context io;
  ReportLog log;
  StallMonitor monitor(io, test_options(log));
  TaskSet tasks(io.get_executor(), "stall-test");

  asio::steady_timer later(io, 50ms);
  later.async_wait([](boost::system::error_code) {
    RunningTaskName::Scope scope("scoped-handler");
    std::this_thread::sleep_for(200ms);
  });
  tasks.spawn("waiter", wait_for(300ms));
  run_monitored(io, tasks, monitor);

  std::vector<StallReport> reports = log.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].task, "scoped-handler");
}

// Keeps the loop busy with short handlers and 1 ms timers for `duration`.
asio::awaitable<void> busy_without_blocking(Clock::duration duration) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  Clock::time_point end = Clock::now() + duration;
  while (Clock::now() < end) {
    for (int i = 0; i < 100; ++i) {
      co_await asio::post(executor, asio::use_awaitable);
    }
    timer.expires_after(1ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

TEST(StallMonitor, QuietLoopReportsNothing) {
  asio::io_context io;
  ReportLog log;
  StallMonitor monitor(io, test_options(log));
  TaskSet tasks(io.get_executor(), "stall-test");

  tasks.spawn("busy", busy_without_blocking(1s));
  run_monitored(io, tasks, monitor);

  EXPECT_EQ(log.reports().size(), 0u);
  EXPECT_EQ(monitor.stalls_total(), 0u);
}

// Three stalls: the second falls inside the rate limit, the third after it.
asio::awaitable<void> block_three_times() {
  co_await wait_for(50ms);
  std::this_thread::sleep_for(120ms);
  co_await wait_for(30ms);
  std::this_thread::sleep_for(120ms);
  co_await wait_for(400ms);
  std::this_thread::sleep_for(120ms);
}

TEST(StallMonitor, RateLimitCountsSuppressed) {
  asio::io_context io;
  ReportLog log;
  StallMonitorOptions options = test_options(log);
  options.slow_callback_threshold = 50ms;
  options.report_burst = 1;
  options.report_interval = 400ms;
  StallMonitor monitor(io, options);
  TaskSet tasks(io.get_executor(), "stall-test");

  tasks.spawn("repeat", block_three_times());
  run_monitored(io, tasks, monitor);

  std::vector<StallReport> reports = log.reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].stall_number, 1u);
  EXPECT_EQ(reports[0].suppressed, 0u);
  EXPECT_EQ(reports[1].stall_number, 3u);
  EXPECT_EQ(reports[1].suppressed, 1u);
  EXPECT_EQ(reports[1].task, "repeat");
  EXPECT_EQ(monitor.stalls_total(), 3u);
  EXPECT_EQ(monitor.reports_suppressed_total(), 1u);
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

TEST(StallMonitor, AsyncDebugLowersThreshold) {
  ScopedEnv debug("SLUICE_ASYNC_DEBUG", "1");
  asio::io_context io;
  ReportLog log;
  StallMonitorOptions options = test_options(log);
  options.use_environment = true;
  StallMonitor monitor(io, options);
  TaskSet tasks(io.get_executor(), "stall-test");

  EXPECT_EQ(monitor.options().slow_callback_threshold, 25ms);
  EXPECT_TRUE(monitor.options().capture_backtrace);

  // 60 ms is below the normal 100 ms threshold.
  tasks.spawn("debug-slow", block_loop(60ms));
  run_monitored(io, tasks, monitor);

  std::vector<StallReport> reports = log.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].task, "debug-slow");
  EXPECT_GE(reports[0].blocked_for, 25ms);
  ASSERT_FALSE(reports[0].backtrace.empty());
  bool found_sleep = false;
  std::string stack;
  for (const std::string& frame : reports[0].backtrace) {
    found_sleep = found_sleep || frame.find("sleep") != std::string::npos;
    stack += frame + "\n";
  }
  EXPECT_TRUE(found_sleep) << stack;
}

TEST(StallMonitor, AsyncDebugZeroIsOff) {
  ScopedEnv debug("SLUICE_ASYNC_DEBUG", "0");
  asio::io_context io;
  ReportLog log;
  StallMonitorOptions options = test_options(log);
  options.use_environment = true;

  StallMonitor monitor(io, options);

  EXPECT_FALSE(StallMonitor::async_debug_requested());
  EXPECT_EQ(monitor.options().slow_callback_threshold, 100ms);
  EXPECT_FALSE(monitor.options().capture_backtrace);
}

TEST(StallMonitor, RejectsInvalidOptions) {
  asio::io_context io;
  ReportLog log;
  StallMonitorOptions slow_heartbeat = test_options(log);
  slow_heartbeat.heartbeat_interval = 100ms;
  StallMonitorOptions no_burst = test_options(log);
  no_burst.report_burst = 0;
  StallMonitorOptions zero_threshold = test_options(log);
  zero_threshold.slow_callback_threshold = 0ms;

  EXPECT_THROW(StallMonitor(io, slow_heartbeat), std::invalid_argument);
  EXPECT_THROW(StallMonitor(io, no_burst), std::invalid_argument);
  EXPECT_THROW(StallMonitor(io, zero_threshold), std::invalid_argument);
}

TEST(StallMonitor, StartStopFromOtherThread) {
  asio::io_context io;
  ReportLog log;
  StallMonitor monitor(io, test_options(log));
  // Keeps run() going while the monitor is stopped between rounds.
  auto guard = asio::make_work_guard(io);
  std::thread loop([&io] { io.run(); });

  for (int round = 0; round < 5; ++round) {
    monitor.start();
    monitor.start();  // no-op while running
    std::this_thread::sleep_for(30ms);
    monitor.stop();
  }
  monitor.stop();  // idempotent
  guard.reset();
  loop.join();

  EXPECT_EQ(monitor.stalls_total(), 0u);
  EXPECT_TRUE(log.reports().empty());
}

}  // namespace
}  // namespace sluice::runtime
