// Throughput of sluice::redis::Client: `coroutines` coroutines run SET (or
// GET) in a loop on one io_context thread, and the commands share
// `connections` pipelined connections. The server comes from
// SLUICE_BENCH_REDIS_URL (bench/redis/run.sh sets it) or
// SLUICE_TEST_REDIS_URL.
//
// Arguments of each benchmark: command (0 SET, 1 GET), coroutines,
// connections.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <sluice/redis/client.hpp>

namespace {

namespace asio = boost::asio;
namespace redis = sluice::redis;

// Commands per iteration and coroutine, and in total at most: large enough
// that start-up costs vanish, small enough that one coroutine (one round
// trip per command) finishes an iteration in about a second.
constexpr std::int64_t kOpsPerCoroutine = 20000;
constexpr std::int64_t kMaxOpsPerIteration = 200000;
// redis-benchmark's default value size is 3 bytes ("xxx").
constexpr std::string_view kValue = "xxx";

std::string server_url() {
  for (const char* name : {"SLUICE_BENCH_REDIS_URL", "SLUICE_TEST_REDIS_URL"}) {
    if (const char* url = std::getenv(name)) {
      return url;
    }
  }
  return {};
}

asio::awaitable<void> worker(redis::Client& client, bool get, std::int64_t ops, std::int64_t& failures) {
  std::string key = "sluice-bench:key";
  for (std::int64_t i = 0; i < ops; ++i) {
    try {
      if (get) {
        co_await client.get(key);
      } else {
        co_await client.set(key, kValue);
      }
    } catch (const std::exception&) {
      ++failures;
    }
  }
}

void BM_Commands(benchmark::State& state) {
  std::string url = server_url();
  if (url.empty()) {
    state.SkipWithError("set SLUICE_BENCH_REDIS_URL or SLUICE_TEST_REDIS_URL");
    return;
  }
  bool get = state.range(0) == 1;
  auto coroutines = state.range(1);
  auto connections = static_cast<std::size_t>(state.range(2));

  asio::io_context io(1);
  redis::ClientOptions options;
  options.url = url;
  options.connections = connections;
  redis::Client client(io.get_executor(), options);
  std::int64_t failures = 0;
  std::int64_t per_coroutine = std::min(kOpsPerCoroutine, kMaxOpsPerIteration / coroutines);

  for (auto _ : state) {
    std::int64_t done = 0;
    for (std::int64_t c = 0; c < coroutines; ++c) {
      asio::co_spawn(io, worker(client, get, per_coroutine, failures),
                     [&done](std::exception_ptr) { ++done; });
    }
    while (done < coroutines) {
      io.run_one();
    }
  }

  bool closed = false;
  asio::co_spawn(io, client.close(), [&closed](std::exception_ptr) { closed = true; });
  while (!closed) {
    io.run_one();
  }
  if (failures > 0) {
    state.SkipWithError("some commands failed");
  }
  state.SetItemsProcessed(state.iterations() * per_coroutine * coroutines);
  state.SetLabel(get ? "GET" : "SET");
}

}  // namespace

BENCHMARK(BM_Commands)
    ->ArgNames({"get", "coroutines", "connections"})
    ->Args({0, 64, 1})
    ->Args({1, 64, 1})
    ->Args({0, 64, 2})
    ->Args({1, 64, 2})
    ->Args({0, 64, 4})
    ->Args({1, 64, 4})
    ->Args({0, 1, 1})
    ->Args({1, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
