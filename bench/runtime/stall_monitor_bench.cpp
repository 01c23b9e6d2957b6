// Overhead of a running StallMonitor on a loop-heavy workload.
//
// Each iteration resumes one coroutine 1,000,000 times through the loop's
// queue (`co_await post(...)`), with and without the monitor, in the same
// binary. Both monitored and unmonitored arms keep one idle timer pending.
// Asio starts polling its reactor (one non-blocking epoll_wait per pass
// through the handler queue) once the first I/O object exists. Every real
// bot has sockets, so a loop without any I/O object is not a fair baseline;
// it is still measured (`NoIoObjects`) to show that effect.
//
// Run with interleaving, because the machine is shared:
//   sluice_runtime_bench --benchmark_filter=StallMonitor
//     --benchmark_repetitions=10 --benchmark_enable_random_interleaving=true
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

#include <sluice/runtime/stall_monitor.hpp>

namespace {

namespace asio = boost::asio;
using sluice::runtime::StallMonitor;
using sluice::runtime::StallMonitorOptions;

constexpr std::int64_t kResumptions = 1'000'000;

enum class Arm { kNoIoObjects, kIdleTimer, kMonitor };

// Resumes through the queue kResumptions times, then releases whatever keeps
// the loop alive (the idle timer or the monitor's heartbeat).
asio::awaitable<void> resume_repeatedly(asio::steady_timer* idle_timer, StallMonitor* monitor) {
  auto executor = co_await asio::this_coro::executor;
  for (std::int64_t i = 0; i < kResumptions; ++i) {
    co_await asio::post(executor, asio::use_awaitable);
  }
  if (idle_timer != nullptr) {
    idle_timer->cancel();
  }
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
    StallMonitorOptions options{.use_environment = false, .loop_name = "bench"};
    std::optional<StallMonitor> monitor;
    if (arm == Arm::kNoIoObjects) {
      idle_timer.cancel();
    }
    if (arm == Arm::kMonitor) {
      monitor.emplace(io, options);
      monitor->start();
    }
    // Benchmark code may detach: the coroutine ends before run() returns.
    asio::steady_timer* timer_to_cancel = arm == Arm::kNoIoObjects ? nullptr : &idle_timer;
    asio::co_spawn(io, resume_repeatedly(timer_to_cancel, monitor ? &*monitor : nullptr), asio::detached);
    state.ResumeTiming();

    io.run();

    state.PauseTiming();
    monitor.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kResumptions);
}

void BM_StallMonitorOff_NoIoObjects(benchmark::State& state) { run_arm(state, Arm::kNoIoObjects); }
void BM_StallMonitorOff_IdleTimer(benchmark::State& state) { run_arm(state, Arm::kIdleTimer); }
void BM_StallMonitorOn(benchmark::State& state) { run_arm(state, Arm::kMonitor); }

BENCHMARK(BM_StallMonitorOff_NoIoObjects)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_StallMonitorOff_IdleTimer)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
BENCHMARK(BM_StallMonitorOn)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace
