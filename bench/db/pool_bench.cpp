// Pool checkout cost: acquire + release of an idle connection, with heap
// allocations per operation counted by a replaced global operator new.

#include <atomic>
#include <cstdlib>
#include <new>

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <sluice/db/pool.hpp>

namespace {

std::atomic<std::uint64_t> g_allocations{0};

}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    return p;
  }
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace asio = boost::asio;
using sluice::db::Clock;

struct NullConnection {
  int id = 0;
};

// A driver whose connections cost nothing: the benchmark measures the pool.
struct NullDriver {
  using Connection = NullConnection;
  static constexpr bool kPings = true;

  asio::awaitable<std::unique_ptr<NullConnection>> connect(Clock::time_point) {
    co_return std::make_unique<NullConnection>();
  }
  asio::awaitable<void> ping(NullConnection&, Clock::time_point) { co_return; }
  asio::awaitable<void> reset(NullConnection&, sluice::db::ResetOnReturn, Clock::time_point) { co_return; }
  sluice::db::ReturnState return_state(const NullConnection&) const { return sluice::db::ReturnState::clean; }
  void close(std::unique_ptr<NullConnection>) {}
};

void rethrow(std::exception_ptr error) {
  if (error) {
    std::rethrow_exception(error);
  }
}

sluice::db::PoolOptions bench_options() {
  sluice::db::PoolOptions options;
  options.hold_warning_threshold = std::chrono::milliseconds{0};
  return options;
}

asio::awaitable<void> warm_up(sluice::db::Pool<NullDriver>* pool) {
  auto conn = co_await pool->acquire();
}

// try_acquire() + release: the synchronous fast path.
void BM_TryAcquireRelease(benchmark::State& state) {
  asio::io_context ioc;
  sluice::db::Pool<NullDriver> pool(ioc.get_executor(), NullDriver{}, bench_options());
  asio::co_spawn(ioc, warm_up(&pool), rethrow);
  ioc.run();

  const auto before = g_allocations.load();
  for (auto _ : state) {
    auto conn = pool.try_acquire();
    benchmark::DoNotOptimize(conn);
  }
  state.counters["allocs_per_op"] =
      benchmark::Counter(static_cast<double>(g_allocations.load() - before) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_TryAcquireRelease);

asio::awaitable<void> acquire_loop(sluice::db::Pool<NullDriver>* pool, benchmark::State* state) {
  {
    auto conn = co_await pool->acquire();
  }
  const auto before = g_allocations.load();
  for (auto _ : *state) {
    auto conn = co_await pool->acquire();
    benchmark::DoNotOptimize(conn);
  }
  state->counters["allocs_per_op"] = benchmark::Counter(static_cast<double>(g_allocations.load() - before) /
                                                        static_cast<double>(state->iterations()));
}

// co_await acquire() + release from a coroutine: includes the awaitable
// frame of acquire() (Asio recycles frame memory per thread).
void BM_AcquireRelease(benchmark::State& state) {
  asio::io_context ioc;
  sluice::db::Pool<NullDriver> pool(ioc.get_executor(), NullDriver{}, bench_options());
  asio::co_spawn(ioc, acquire_loop(&pool, &state), rethrow);
  ioc.run();
}
BENCHMARK(BM_AcquireRelease);

}  // namespace
