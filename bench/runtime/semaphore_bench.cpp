// Semaphore acquire + release, uncontended and contended. The Python
// asyncio counterparts are in asyncio_compare.py; compare.sh runs both.
#include <sluice/runtime/semaphore.hpp>

#include <cstdint>
#include <exception>

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace {

namespace asio = boost::asio;
using sluice::runtime::Permit;
using sluice::runtime::Semaphore;

// Operations per batch in the contended case, so that spawning the workers
// is a small share of the measured time.
constexpr std::int64_t kContendedBatch = 10'000;

void rethrow_if_set(const std::exception_ptr& error) {
  if (error) {
    std::rethrow_exception(error);
  }
}

asio::awaitable<void> acquire_release_loop(Semaphore* semaphore, benchmark::State* state) {
  for (auto _ : *state) {
    Permit permit = co_await semaphore->acquire();
    benchmark::DoNotOptimize(permit);
  }
}

// One task acquires and releases a free permit: no suspension, no handoff.
void BM_SemaphoreUncontended(benchmark::State& state) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 1, "bench");
  std::exception_ptr error;
  asio::co_spawn(io, acquire_release_loop(&semaphore, &state), [&](std::exception_ptr e) { error = e; });
  io.run();
  rethrow_if_set(error);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SemaphoreUncontended);

asio::awaitable<void> contend(Semaphore* semaphore, std::int64_t* remaining) {
  while (*remaining > 0) {
    Permit permit = co_await semaphore->acquire();
    --*remaining;
  }
}

// `waiters` tasks share one permit. Every release hands it to the next
// waiter in FIFO order, so each operation is a queued wait plus a handoff.
void BM_SemaphoreContended(benchmark::State& state) {
  const auto waiters = state.range(0);
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 1, "bench");
  std::exception_ptr error;
  while (state.KeepRunningBatch(kContendedBatch)) {
    std::int64_t remaining = kContendedBatch;
    for (std::int64_t i = 0; i < waiters; ++i) {
      asio::co_spawn(io, contend(&semaphore, &remaining), [&](std::exception_ptr e) { error = e; });
    }
    io.run();
    io.restart();
    rethrow_if_set(error);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SemaphoreContended)->Arg(100);

}  // namespace
