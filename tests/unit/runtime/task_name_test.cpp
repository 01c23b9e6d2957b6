#include <sluice/runtime/task_name.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace asio = boost::asio;
using sluice::runtime::NamedExecutor;
using sluice::runtime::RunningTaskName;

namespace {

// Waits on a timer twice and records the running name after each wait.
asio::awaitable<void> record_names_after_timers(std::string* first, std::string* second) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, std::chrono::milliseconds(1));
  co_await timer.async_wait(asio::use_awaitable);
  *first = RunningTaskName::for_this_thread().snapshot();
  timer.expires_after(std::chrono::milliseconds(1));
  co_await timer.async_wait(asio::use_awaitable);
  *second = RunningTaskName::for_this_thread().snapshot();
}

void rethrow_if_set(std::exception_ptr error) {
  if (error) {
    std::rethrow_exception(error);
  }
}

}  // namespace

TEST(RunningTaskName, SnapshotIsEmptyWithoutTask) {
  EXPECT_EQ(RunningTaskName::for_this_thread().snapshot(), "");
}

TEST(RunningTaskName, SetAndClearRoundTrip) {
  auto& current = RunningTaskName::for_this_thread();
  current.set("poll_updates");
  EXPECT_EQ(current.snapshot(), "poll_updates");
  current.clear();
  EXPECT_EQ(current.snapshot(), "");
}

TEST(RunningTaskName, LongNameIsCutToMaxLength) {
  auto& current = RunningTaskName::for_this_thread();
  std::string long_name(200, 'x');
  long_name[RunningTaskName::kMaxLength - 1] = 'y';
  current.set(long_name);
  std::string stored = current.snapshot();
  current.clear();
  EXPECT_EQ(stored.size(), RunningTaskName::kMaxLength);
  EXPECT_EQ(stored.back(), 'y');
}

TEST(RunningTaskName, ScopesNestAndRestore) {
  auto& current = RunningTaskName::for_this_thread();
  {
    RunningTaskName::Scope outer("outer_task_with_a_name_longer_than_eight");
    EXPECT_EQ(current.snapshot(), "outer_task_with_a_name_longer_than_eight");
    {
      RunningTaskName::Scope inner("inner");
      EXPECT_EQ(current.snapshot(), "inner");
    }
    EXPECT_EQ(current.snapshot(), "outer_task_with_a_name_longer_than_eight");
  }
  EXPECT_EQ(current.snapshot(), "");
}

TEST(RunningTaskName, OtherThreadReadsWholeNames) {
  // The owner alternates between two names while another thread reads; every
  // read must be one of them (or empty before the first write), never a mix.
  auto& current = RunningTaskName::for_this_thread();
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  const std::string a(40, 'a');
  const std::string b(17, 'b');
  std::thread reader([&] {
    while (!done.load()) {
      std::string seen = current.snapshot();
      if (!seen.empty() && seen != a && seen != b) {
        torn.fetch_add(1);
      }
      reads.fetch_add(1);
    }
  });
  for (int i = 0; i < 200'000 || reads.load() < 100; ++i) {
    current.set(i % 2 == 0 ? a : b);
  }
  done.store(true);
  reader.join();
  current.clear();
  EXPECT_EQ(torn.load(), 0);
}

TEST(NamedExecutor, TaskSeesOwnNameAfterTimer) {
  asio::io_context io;
  auto name = std::make_shared<const std::string>("fetch_prices");
  NamedExecutor<asio::io_context::executor_type> executor(io.get_executor(), name);
  std::string first;
  std::string second;
  std::exception_ptr error;
  asio::co_spawn(executor, record_names_after_timers(&first, &second),
                 [&](std::exception_ptr e) { error = e; });
  io.run();
  rethrow_if_set(error);
  EXPECT_EQ(first, "fetch_prices");
  EXPECT_EQ(second, "fetch_prices");
  EXPECT_EQ(RunningTaskName::for_this_thread().snapshot(), "");
}

TEST(NamedExecutor, WorksInsideAnyIoExecutor) {
  asio::io_context io;
  asio::any_io_executor executor =
      NamedExecutor(asio::any_io_executor(io.get_executor()), std::make_shared<const std::string>("a"));
  asio::any_io_executor other =
      NamedExecutor(asio::any_io_executor(io.get_executor()), std::make_shared<const std::string>("b"));
  std::string a_first, a_second, b_first, b_second;
  std::exception_ptr error_a, error_b;
  asio::co_spawn(executor, record_names_after_timers(&a_first, &a_second),
                 [&](std::exception_ptr e) { error_a = e; });
  asio::co_spawn(other, record_names_after_timers(&b_first, &b_second),
                 [&](std::exception_ptr e) { error_b = e; });
  io.run();
  rethrow_if_set(error_a);
  rethrow_if_set(error_b);
  EXPECT_EQ(a_first, "a");
  EXPECT_EQ(a_second, "a");
  EXPECT_EQ(b_first, "b");
  EXPECT_EQ(b_second, "b");
}
