// Offloads blocking work while the event loop stays responsive, then blocks
// the loop on purpose inside a named task to show the stall monitor's report.
//
// Expected output: three jobs of 200 ms finish on the blocking pool while a
// 10 ms ticker on the loop stays on time. Then a WARNING line from
// "sluice.runtime" names the task "blocking-handler" while it still blocks.
// An INFO line gives the total time once it ends. The program exits with 0
// when all of this happened. Ctrl-C stops it early. With SLUICE_ASYNC_DEBUG=1
// the report also shows the loop thread's stack.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/offload.hpp>
#include <sluice/runtime/shutdown.hpp>
#include <sluice/runtime/stall_monitor.hpp>
#include <sluice/runtime/task_set.hpp>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using sluice::runtime::BlockingPool;
using sluice::runtime::offload;
using sluice::runtime::ShutdownSignals;
using sluice::runtime::StallMonitor;
using sluice::runtime::StallReport;
using sluice::runtime::TaskSet;

namespace {

struct DemoState {
  bool stop_ticker = false;
  Clock::duration max_tick_lag{};
  Clock::duration offload_tick_lag{};  // max_tick_lag at the end of step 1
  std::vector<std::size_t> line_counts;
  std::mutex reports_mutex;  // on_stall runs on the watchdog thread
  std::vector<StallReport> reports;
};

asio::awaitable<void> sleep_for(Clock::duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

// Measures how late a 10 ms timer fires: the loop's responsiveness.
asio::awaitable<void> ticker(DemoState& state) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!state.stop_ticker) {
    Clock::time_point due = Clock::now() + 10ms;
    timer.expires_at(due);
    co_await timer.async_wait(asio::use_awaitable);
    state.max_tick_lag = std::max(state.max_tick_lag, Clock::now() - due);
  }
}

// Stands in for a blocking parser or a SQLite query: 200 ms of blocking work.
std::size_t count_lines_slowly(int file) {
  std::this_thread::sleep_for(200ms);
  return static_cast<std::size_t>(1000 + file);
}

asio::awaitable<void> import_file(BlockingPool& pool, DemoState& state, int file) {
  auto job = [file] { return count_lines_slowly(file); };
  std::size_t lines = co_await offload(pool, job);
  state.line_counts.push_back(lines);
}

// The mistake the monitor exists for: a blocking call on the loop.
asio::awaitable<void> blocking_handler() {
  std::this_thread::sleep_for(250ms);
  co_return;
}

asio::awaitable<void> run_demo(TaskSet& tasks, BlockingPool& pool, StallMonitor& monitor,
                               ShutdownSignals& signals, DemoState& state) {
  fmt::print("1. offloading three 200 ms jobs to the blocking pool\n");
  tasks.spawn("ticker", ticker(state));
  for (int file = 0; file < 3; ++file) {
    tasks.spawn(fmt::format("import-{}", file), import_file(pool, state, file));
  }
  co_await sleep_for(400ms);
  state.offload_tick_lag = state.max_tick_lag;
  fmt::print("   {} jobs done, max ticker lag {} ms\n", state.line_counts.size(),
             std::chrono::duration_cast<std::chrono::milliseconds>(state.offload_tick_lag).count());

  fmt::print("2. blocking the loop for 250 ms inside task \"blocking-handler\"\n");
  tasks.spawn("blocking-handler", blocking_handler());
  co_await sleep_for(100ms);

  // Shutdown in stages: stop the tasks, stop the monitor, join the pool
  // while the loop still runs, stop listening for signals.
  state.stop_ticker = true;
  co_await tasks.close(1s);
  monitor.stop();
  pool.join();
  signals.cancel();
}

}  // namespace

int main() {
  asio::io_context io;
  BlockingPool pool(3, "demo-pool");
  DemoState state;
  StallMonitor monitor(io, {
                               .slow_callback_threshold = 100ms,
                               .loop_name = "demo",
                               .on_stall =
                                   [&state](const StallReport& report) {
                                     std::lock_guard lock(state.reports_mutex);
                                     state.reports.push_back(report);
                                   },
                           });
  TaskSet tasks(io.get_executor(), "demo");
  ShutdownSignals signals(io.get_executor(), [&tasks](int) { tasks.cancel_all(); });

  monitor.start();
  std::exception_ptr error;
  asio::co_spawn(io, run_demo(tasks, pool, monitor, signals, state),
                 [&error](std::exception_ptr e) { error = e; });
  io.run();

  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      fmt::print(stderr, "demo failed: {}\n", e.what());
    }
    return 1;
  }

  std::lock_guard lock(state.reports_mutex);
  bool responsive = state.line_counts.size() == 3 && state.offload_tick_lag < 50ms;
  bool reported = state.reports.size() == 1 && state.reports[0].task == "blocking-handler";
  fmt::print("3. offload kept the loop responsive: {}; stall reported with the task name: {}\n",
             responsive ? "yes" : "no", reported ? "yes" : "no");
  return responsive && reported ? 0 : 1;
}
