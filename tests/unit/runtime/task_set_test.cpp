#include <sluice/runtime/task_set.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <malloc.h>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/semaphore.hpp>
#include <sluice/runtime/task_name.hpp>

// Sanitizers replace malloc and add their own per-allocation overhead, so
// the memory bound is only checked in plain builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLUICE_TEST_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define SLUICE_TEST_UNDER_SANITIZER 1
#endif
#endif

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::runtime::RunningTaskName;
using sluice::runtime::TaskSet;
using sluice::runtime::TaskSetClosed;

namespace {

// Copies everything the "sluice.runtime" logger writes while it exists.
class LogCapture {
 public:
  LogCapture()
      : logger_(sluice::runtime::module_logger("sluice.runtime")),
        sink_(std::make_shared<spdlog::sinks::ostream_sink_st>(stream_)) {
    logger_->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = logger_->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const { return stream_.str(); }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<spdlog::sinks::ostream_sink_st> sink_;
};

// Increments a counter when destroyed, to prove that a task unwound.
struct CleanupCounter {
  int* count;
  explicit CleanupCounter(int* c) : count(c) {}
  CleanupCounter(const CleanupCounter&) = delete;
  CleanupCounter& operator=(const CleanupCounter&) = delete;
  ~CleanupCounter() { ++*count; }
};

asio::awaitable<void> yield_then_count(int* finished) {
  auto executor = co_await asio::this_coro::executor;
  co_await asio::post(executor, asio::use_awaitable);
  ++*finished;
}

asio::awaitable<void> count_now(int* finished) {
  ++*finished;
  co_return;
}

asio::awaitable<void> yield_then_throw(std::string message) {
  auto executor = co_await asio::this_coro::executor;
  co_await asio::post(executor, asio::use_awaitable);
  throw std::runtime_error(message);
}

asio::awaitable<void> sleep_with_cleanup(std::chrono::milliseconds duration, int* cleaned_up, int* finished) {
  CleanupCounter cleanup(cleaned_up);
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
  ++*finished;
}

asio::awaitable<void> record_name_after_timer(std::string* seen) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  co_await timer.async_wait(asio::use_awaitable);
  *seen = RunningTaskName::for_this_thread().snapshot();
}

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

// Runs `body` as a coroutine on `io` and reports its exception, if any.
template <typename Body>
void run_coroutine(asio::io_context& io, Body body) {
  std::exception_ptr error;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) {
    std::rethrow_exception(error);
  }
}

}  // namespace

TEST(TaskSet, DroppedTasksRunToCompletion) {
  constexpr int kTasks = 100'000;
  constexpr int kFaultyIndex = 54'321;
  LogCapture log;
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "bulk");
  int finished = 0;
  for (int i = 0; i < kTasks; ++i) {
    if (i == kFaultyIndex) {
      tasks.spawn("faulty_task", yield_then_throw("database went away"));
    } else {
      tasks.spawn("counter", yield_then_count(&finished));
    }
  }
  EXPECT_EQ(tasks.size(), static_cast<std::size_t>(kTasks));
  io.run();

  EXPECT_EQ(finished, kTasks - 1);
  EXPECT_EQ(tasks.size(), 0u);
  EXPECT_EQ(tasks.spawned_total(), static_cast<std::uint64_t>(kTasks));
  EXPECT_EQ(tasks.completed_total(), static_cast<std::uint64_t>(kTasks - 1));
  EXPECT_EQ(tasks.failed_total(), 1u);
  EXPECT_EQ(tasks.cancelled_total(), 0u);
  std::string text = log.text();
  EXPECT_NE(text.find("task=faulty_task"), std::string::npos) << text;
  EXPECT_NE(text.find("error=database went away"), std::string::npos) << text;
  EXPECT_NE(text.find("task_set=bulk"), std::string::npos) << text;
  EXPECT_NE(text.find("[error]"), std::string::npos) << text;
}

TEST(TaskSet, TaskSeesOwnNameAfterTimer) {
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "named");
  std::string first;
  std::string second;
  tasks.spawn("first_task", record_name_after_timer(&first));
  tasks.spawn("second_task", record_name_after_timer(&second));
  io.run();
  EXPECT_EQ(first, "first_task");
  EXPECT_EQ(second, "second_task");
  EXPECT_EQ(RunningTaskName::for_this_thread().snapshot(), "");
}

TEST(TaskSet, SpawnOnTheLoopStartsTheTaskLater) {
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "later");
  int finished = 0;
  bool ran_inside_spawn = true;
  auto spawn_from_loop = [&] {
    tasks.spawn("counter", count_now(&finished));
    ran_inside_spawn = finished != 0;
  };
  asio::post(io, spawn_from_loop);
  io.run();
  EXPECT_FALSE(ran_inside_spawn);
  EXPECT_EQ(finished, 1);
}

TEST(TaskSet, RunKeepsGoingWhileTasksWaitOutsideIo) {
  // The tasks wait on a semaphore, which is no I/O operation, so only the
  // set keeps the io_context from running out of work.
  asio::io_context io;
  sluice::runtime::Semaphore gate(io.get_executor(), 1, "gate");
  std::optional<sluice::runtime::Permit> gate_permit = gate.try_acquire();
  TaskSet tasks(io.get_executor(), "parked");
  tasks.spawn("first", wait_for_gate(&gate));
  tasks.spawn("second", wait_for_gate(&gate));
  io.poll();
  EXPECT_FALSE(io.stopped());
  EXPECT_EQ(gate.waiters(), 2u);

  gate.close();
  io.run();
  EXPECT_EQ(tasks.completed_total(), 2u);
  EXPECT_TRUE(io.stopped());
}

TEST(TaskSet, CloseWaitsForRunningTasks) {
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "drain");
  int cleaned_up = 0;
  int finished = 0;
  for (int i = 0; i < 10; ++i) {
    tasks.spawn("short", sleep_with_cleanup(5ms, &cleaned_up, &finished));
  }
  auto close = [&]() -> asio::awaitable<void> { co_await tasks.close(10s); };
  run_coroutine(io, close);

  EXPECT_EQ(finished, 10);
  EXPECT_EQ(cleaned_up, 10);
  EXPECT_EQ(tasks.completed_total(), 10u);
  EXPECT_EQ(tasks.cancelled_total(), 0u);
  EXPECT_TRUE(tasks.closed());
}

TEST(TaskSet, CloseCancelsTasksAfterDeadline) {
  LogCapture log;
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "shutdown");
  int cleaned_up = 0;
  int finished = 0;
  for (int i = 0; i < 5; ++i) {
    tasks.spawn("quick", sleep_with_cleanup(1ms, &cleaned_up, &finished));
    tasks.spawn("endless", sleep_with_cleanup(std::chrono::hours(1), &cleaned_up, &finished));
  }
  auto started = std::chrono::steady_clock::now();
  auto close = [&]() -> asio::awaitable<void> { co_await tasks.close(50ms); };
  run_coroutine(io, close);
  auto elapsed = std::chrono::steady_clock::now() - started;

  EXPECT_EQ(finished, 5);
  EXPECT_EQ(cleaned_up, 10);
  EXPECT_EQ(tasks.size(), 0u);
  EXPECT_EQ(tasks.completed_total(), 5u);
  EXPECT_EQ(tasks.cancelled_total(), 5u);
  EXPECT_EQ(tasks.failed_total(), 0u);
  EXPECT_GE(elapsed, 50ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_NE(log.text().find("close deadline passed"), std::string::npos) << log.text();
}

TEST(TaskSet, SpawnAfterCloseThrows) {
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "closed_set");
  auto close = [&]() -> asio::awaitable<void> { co_await tasks.close(1s); };
  run_coroutine(io, close);
  int finished = 0;
  try {
    tasks.spawn("late_task", yield_then_count(&finished));
    FAIL() << "spawn after close did not throw";
  } catch (const TaskSetClosed& error) {
    EXPECT_EQ(error.set_name(), "closed_set");
    EXPECT_EQ(error.task_name(), "late_task");
    EXPECT_NE(std::string(error.what()).find("late_task"), std::string::npos) << error.what();
  }
  EXPECT_EQ(tasks.spawned_total(), 0u);
}

TEST(TaskSet, JoinWaitsUntilEmpty) {
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "joined");
  int cleaned_up = 0;
  int finished = 0;
  tasks.spawn("a", sleep_with_cleanup(2ms, &cleaned_up, &finished));
  tasks.spawn("b", sleep_with_cleanup(4ms, &cleaned_up, &finished));
  int finished_at_join = -1;
  auto join = [&]() -> asio::awaitable<void> {
    co_await tasks.join();
    finished_at_join = finished;
  };
  run_coroutine(io, join);
  EXPECT_EQ(finished_at_join, 2);
  EXPECT_FALSE(tasks.closed());
}

TEST(TaskSet, DestructorCancelsRunningTasks) {
  asio::io_context io;
  int cleaned_up = 0;
  int finished = 0;
  {
    TaskSet tasks(io.get_executor(), "dropped");
    tasks.spawn("endless", sleep_with_cleanup(std::chrono::hours(1), &cleaned_up, &finished));
    io.poll();
  }
  auto started = std::chrono::steady_clock::now();
  io.run();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(cleaned_up, 1);
  EXPECT_EQ(finished, 0);
}

TEST(TaskSet, DestroyedContextAbandonsTasks) {
  auto io = std::make_unique<asio::io_context>();
  TaskSet tasks(io->get_executor(), "orphans");
  int cleaned_up = 0;
  int finished = 0;
  for (int i = 0; i < 3; ++i) {
    tasks.spawn("endless", sleep_with_cleanup(std::chrono::hours(1), &cleaned_up, &finished));
  }
  io->poll();
  io.reset();
  EXPECT_EQ(tasks.size(), 0u);
  EXPECT_EQ(tasks.cancelled_total(), 3u);
  EXPECT_EQ(cleaned_up, 3);
}

TEST(TaskSet, CancelAllLeavesSetOpen) {
  asio::io_context io;
  TaskSet tasks(io.get_executor(), "restartable");
  int cleaned_up = 0;
  int finished = 0;
  tasks.spawn("endless", sleep_with_cleanup(std::chrono::hours(1), &cleaned_up, &finished));
  io.poll();
  tasks.cancel_all();
  io.run();
  EXPECT_EQ(tasks.cancelled_total(), 1u);
  EXPECT_FALSE(tasks.closed());
  io.restart();
  tasks.spawn("again", yield_then_count(&finished));
  io.run();
  EXPECT_EQ(finished, 1);
}

TEST(TaskSet, PendingTaskMemoryIsSmall) {
  // Each task waits on a semaphore: its frame, its entry in the set, its
  // bottom frame and its waiter node are all allocated when the heap is
  // measured.
  constexpr int kTasks = 100'000;
  [[maybe_unused]] constexpr std::size_t kMaxBytesPerTask = 4096;
  asio::io_context io;
  sluice::runtime::Semaphore gate(io.get_executor(), 1, "gate");
  std::optional<sluice::runtime::Permit> held = gate.try_acquire();
  TaskSet tasks(io.get_executor(), "parked");
  std::size_t before = heap_in_use();
  for (int i = 0; i < kTasks; ++i) {
    tasks.spawn("parked_task", wait_for_gate(&gate));
  }
  io.poll();
  std::size_t bytes_per_task = (heap_in_use() - before) / kTasks;
  ASSERT_EQ(gate.waiters(), static_cast<std::size_t>(kTasks));

  std::printf("heap in use per pending task: %zu bytes\n", bytes_per_task);
  gate.close();
  io.run();
  EXPECT_EQ(tasks.completed_total(), static_cast<std::uint64_t>(kTasks));
#ifndef SLUICE_TEST_UNDER_SANITIZER
  EXPECT_LT(bytes_per_task, kMaxBytesPerTask);
#endif
}
