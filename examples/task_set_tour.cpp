// A tour of the runtime primitives: TaskSet owns background tasks and shuts
// them down in stages, Semaphore caps concurrency in FIFO order, and
// map_bounded runs a function over many items with a limit. Finishes in
// well under a second and prints what happens.
#include <algorithm>
#include <chrono>
#include <exception>
#include <ranges>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sluice/runtime/semaphore.hpp>
#include <sluice/runtime/task_group.hpp>
#include <sluice/runtime/task_name.hpp>
#include <sluice/runtime/task_set.hpp>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::runtime::Permit;
using sluice::runtime::RunningTaskName;
using sluice::runtime::Semaphore;
using sluice::runtime::TaskSet;

namespace {

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

// Prints when it is destroyed, to show that a cancelled task unwinds.
struct Cleanup {
  std::string task;
  ~Cleanup() { fmt::print("  [{}] cleanup ran\n", task); }
};

asio::awaitable<void> greet() {
  co_await sleep_for(10ms);
  fmt::print("  [{}] hello after 10 ms\n", RunningTaskName::for_this_thread().snapshot());
}

asio::awaitable<void> fail() {
  co_await sleep_for(20ms);
  throw std::runtime_error("the database refused the connection");
}

asio::awaitable<void> poll_forever() {
  Cleanup cleanup{"poller"};
  for (int round = 1;; ++round) {
    co_await sleep_for(50ms);
    fmt::print("  [poller] round {}\n", round);
  }
}

asio::awaitable<void> worker(Semaphore* limit, int id, std::vector<int>* order) {
  Permit permit = co_await limit->acquire();
  order->push_back(id);
  fmt::print("  worker {} got a permit, {} left, {} waiting\n", id, limit->available(), limit->waiters());
  co_await sleep_for(5ms);
}

asio::awaitable<void> tour(TaskSet* background) {
  auto executor = co_await asio::this_coro::executor;

  fmt::print("1. TaskSet: three background tasks; the caller keeps no handle\n");
  background->spawn("greeter", greet());
  background->spawn("faulty", fail());
  background->spawn("poller", poll_forever());
  co_await sleep_for(120ms);
  fmt::print("   closing with a 30 ms deadline; the poller never ends on its own\n");
  co_await background->close(30ms);
  fmt::print("   spawned={} completed={} failed={} cancelled={} running={}\n", background->spawned_total(),
             background->completed_total(), background->failed_total(), background->cancelled_total(),
             background->size());

  fmt::print("2. Semaphore: five workers, two permits, served in arrival order\n");
  Semaphore limit(executor, 2, "tour");
  std::vector<int> order;
  TaskSet workers(executor, "workers");
  for (int id = 1; id <= 5; ++id) {
    workers.spawn(fmt::format("worker_{}", id), worker(&limit, id, &order));
  }
  co_await workers.close(1s);
  fmt::print("   order: {}\n", order);

  fmt::print("3. map_bounded: squares of 1..12, at most 3 at a time\n");
  int in_flight = 0;
  int peak = 0;
  auto square = [&](int x) -> asio::awaitable<int> {
    peak = std::max(peak, ++in_flight);
    co_await sleep_for(std::chrono::milliseconds(13 - x));
    --in_flight;
    co_return x * x;
  };
  std::vector<int> squares = co_await sluice::runtime::map_bounded(std::views::iota(1, 13), 3, square);
  fmt::print("   results in input order: {}\n   peak in flight: {}\n", squares, peak);
}

}  // namespace

int main() {
  asio::io_context io;
  TaskSet background(io.get_executor(), "tour");
  std::exception_ptr error;
  auto started = std::chrono::steady_clock::now();
  asio::co_spawn(io, tour(&background), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& failure) {
      fmt::print(stderr, "tour failed: {}\n", failure.what());
      return 1;
    }
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  fmt::print("done in {} ms\n", elapsed.count());
  return 0;
}
