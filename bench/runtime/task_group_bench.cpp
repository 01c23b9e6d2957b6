// Per-item overhead of a bounded task group. The Python asyncio
// counterpart (TaskGroup plus a Semaphore acquired before create_task) is
// in asyncio_compare.py.
#include <sluice/runtime/task_group.hpp>

#include <cstdint>
#include <exception>
#include <ranges>

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace {

namespace asio = boost::asio;

// Items per group run, and the concurrency limit.
constexpr std::int64_t kBatch = 10'000;
constexpr std::size_t kLimit = 100;

asio::awaitable<void> count_item(std::int64_t* finished, std::int64_t item) {
  *finished += item >= 0 ? 1 : 0;
  co_return;
}

asio::awaitable<void> run_group(std::int64_t* finished) {
  auto work = [finished](std::int64_t item) { return count_item(finished, item); };
  co_await sluice::runtime::for_each_bounded(std::views::iota(std::int64_t{0}, kBatch), kLimit, work);
}

void BM_BoundedGroupPerItem(benchmark::State& state) {
  asio::io_context io;
  std::int64_t finished = 0;
  std::exception_ptr error;
  while (state.KeepRunningBatch(kBatch)) {
    asio::co_spawn(io, run_group(&finished), [&](std::exception_ptr e) { error = e; });
    io.run();
    io.restart();
    if (error) {
      std::rethrow_exception(error);
    }
  }
  if (finished != state.iterations()) {
    state.SkipWithError("not every item was processed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BoundedGroupPerItem);

}  // namespace
