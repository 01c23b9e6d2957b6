// TaskSet spawn-to-completion cost per task. The Python asyncio
// counterpart (create_task kept in a set) is in asyncio_compare.py.
#include <sluice/runtime/task_set.hpp>

#include <cstdint>
#include <malloc.h>
#include <optional>

#include <benchmark/benchmark.h>
#include <boost/asio/io_context.hpp>

#include <sluice/runtime/semaphore.hpp>

namespace {

namespace asio = boost::asio;
using sluice::runtime::TaskSet;

// Tasks per batch: spawned together, then run to completion.
constexpr std::int64_t kBatch = 10'000;

asio::awaitable<void> count_one(std::int64_t* finished) {
  ++*finished;
  co_return;
}

void BM_TaskSetSpawnToCompletion(benchmark::State& state) {
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "bench");
  std::int64_t finished = 0;
  while (state.KeepRunningBatch(kBatch)) {
    for (std::int64_t i = 0; i < kBatch; ++i) {
      tasks.spawn("bench_task", count_one(&finished));
    }
    io.run();
    io.restart();
  }
  if (finished != state.iterations() || tasks.failed_total() != 0) {
    state.SkipWithError("not every task completed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TaskSetSpawnToCompletion);

// Returns the bytes of heap in use (glibc's count of allocated bytes).
std::size_t heap_in_use() {
  return mallinfo2().uordblks;
}

asio::awaitable<void> wait_for_gate(sluice::runtime::Semaphore* gate) {
  try {
    co_await gate->acquire();
  } catch (const sluice::runtime::SemaphoreClosed&) {
  }
}

// Heap memory per task while 100,000 tasks wait on a semaphore: the
// task's frame, its entry in the set, co_spawn's state and the waiter node.
// Reported as the counter bytes_per_task; the time is not of interest.
void BM_TaskSetPendingMemory(benchmark::State& state) {
  constexpr int kTasks = 100'000;
  std::size_t growth = 0;
  for (auto _ : state) {
    asio::io_context io;
    sluice::runtime::Semaphore gate(io.get_executor(), 1, "gate");
    std::optional<sluice::runtime::Permit> held = gate.try_acquire();
    TaskSet tasks(io.get_executor(), "parked");
    std::size_t before = heap_in_use();
    for (int i = 0; i < kTasks; ++i) {
      tasks.spawn("parked_task", wait_for_gate(&gate));
    }
    io.poll();
    growth = heap_in_use() - before;
    gate.close();
    io.run();
  }
  state.counters["bytes_per_task"] = static_cast<double>(growth) / kTasks;
}
BENCHMARK(BM_TaskSetPendingMemory)->Iterations(1);

}  // namespace
