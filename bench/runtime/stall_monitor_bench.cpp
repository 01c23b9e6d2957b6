// Overhead of a running StallMonitor on a loop-heavy workload.
//
// Each iteration resumes one coroutine 1,000,000 times through the loop's
// queue (`co_await post(...)`), with and without the monitor, in the same
// binary. Every arm keeps one idle timer pending, as every real bot has
// sockets: Asio polls its reactor (a non-blocking epoll_wait per pass
// through the handler queue) only once the first I/O object exists.
//
// The fair baseline is `Off`, a process that already has a second thread (an
// idle BlockingPool), as every bot that offloads work does. While a process
// is single-threaded, glibc and libstdc++ skip atomic operations and locks
// (for example in shared_ptr reference counts). So the first extra thread
// slows this workload by itself, whoever starts it; `Off_SingleThreaded`
// shows that effect, and `On` minus `Off` is the monitor's own cost.
//
// Run with interleaving, because the machine is shared:
//   sluice_runtime_bench --benchmark_filter=StallMonitor
//     --benchmark_repetitions=20 --benchmark_enable_random_interleaving=true
//     --benchmark_report_aggregates_only=true

#include <chrono>
#include <cstdint>
#include <optional>

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/stall_monitor.hpp>

namespace {

namespace asio = boost::asio;
using sluice::runtime::BlockingPool;
using sluice::runtime::StallMonitor;
using sluice::runtime::StallMonitorOptions;

constexpr std::int64_t kResumptions = 1'000'000;

enum class Arm { kSingleThreaded, kOff, kOn };

// Resumes through the queue kResumptions times, then releases what keeps
// the loop alive (the idle timer and the monitor's heartbeat).
asio::awaitable<void> resume_repeatedly(asio::steady_timer& idle_timer, StallMonitor* monitor) {
  auto executor = co_await asio::this_coro::executor;
  for (std::int64_t i = 0; i < kResumptions; ++i) {
    co_await asio::post(executor, asio::use_awaitable);
  }
  idle_timer.cancel();
  if (monitor != nullptr) {
    monitor->stop();
  }
}

void run_arm(benchmark::State& state, Arm arm) {
  for (auto _ : state) {
    state.PauseTiming();
    asio::io_context io(1);
    asio::steady_timer idle_timer(io, std::chrono::hours(1));
    idle_timer.async_wait([](boost::system::error_code) {});
    std::optional<BlockingPool> pool;
    if (arm != Arm::kSingleThreaded) {
      pool.emplace(1, "bench-pool");
    }
    std::optional<StallMonitor> monitor;
    if (arm == Arm::kOn) {
      monitor.emplace(io, StallMonitorOptions{.use_environment = false, .loop_name = "bench"});
      monitor->start();
    }
    // Benchmark code may detach: the coroutine ends before run() returns.
    asio::co_spawn(io, resume_repeatedly(idle_timer, monitor ? &*monitor : nullptr), asio::detached);
    state.ResumeTiming();

    io.run();

    state.PauseTiming();
    monitor.reset();
    pool.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kResumptions);
}

void BM_StallMonitorOff_SingleThreaded(benchmark::State& state) { run_arm(state, Arm::kSingleThreaded); }
void BM_StallMonitorOff(benchmark::State& state) { run_arm(state, Arm::kOff); }
void BM_StallMonitorOn(benchmark::State& state) { run_arm(state, Arm::kOn); }

// Process CPU time includes the watchdog thread.
BENCHMARK(BM_StallMonitorOff_SingleThreaded)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_StallMonitorOff)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_StallMonitorOn)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace
