#include <sluice/runtime/shutdown.hpp>

#include <csignal>
#include <exception>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace sluice::runtime {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Raises `signal_number` once the waiter is suspended, then returns what
// wait() returned.
asio::awaitable<void> raise_and_wait(ShutdownSignals& signals, int signal_number, int& waited) {
  auto raise_signal = [signal_number] { std::raise(signal_number); };
  asio::post(co_await asio::this_coro::executor, raise_signal);
  waited = co_await signals.wait();
}

TEST(ShutdownSignals, SigtermCallsStopHandlerOnce) {
  asio::io_context io;
  std::vector<int> stops;
  int waited = 0;
  std::exception_ptr error;
  ShutdownSignals signals(io.get_executor(), [&stops](int signal_number) { stops.push_back(signal_number); });

  asio::co_spawn(io, raise_and_wait(signals, SIGTERM, waited), [&](std::exception_ptr e) {
    error = e;
    signals.cancel();
  });
  io.run();

  EXPECT_EQ(error, nullptr);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0], SIGTERM);
  EXPECT_EQ(waited, SIGTERM);
  EXPECT_TRUE(signals.stop_requested());
  EXPECT_EQ(signals.signals_received(), 1);
}

asio::awaitable<void> raise_twice(ShutdownSignals& signals) {
  std::raise(SIGINT);
  co_await signals.wait();
  std::raise(SIGINT);
}

TEST(ShutdownSignals, SecondSignalCallsForceHandler) {
  asio::io_context io;
  int stops = 0;
  std::vector<int> forced;
  std::exception_ptr error;
  // Ends the test if the second signal is never handled.
  asio::steady_timer give_up(io, 10s);
  std::unique_ptr<ShutdownSignals> signals;
  auto on_force = [&](int signal_number) {
    forced.push_back(signal_number);
    signals->cancel();
    give_up.cancel();
  };
  signals = std::make_unique<ShutdownSignals>(io.get_executor(), [&stops](int) { ++stops; }, on_force);
  give_up.async_wait([&signals](boost::system::error_code ec) {
    if (!ec) {
      signals->cancel();
    }
  });

  asio::co_spawn(io, raise_twice(*signals), [&error](std::exception_ptr e) { error = e; });
  io.run();

  EXPECT_EQ(error, nullptr);
  EXPECT_EQ(stops, 1);
  ASSERT_EQ(forced.size(), 1u);
  EXPECT_EQ(forced[0], SIGINT);
  EXPECT_EQ(signals->first_signal(), SIGINT);
  EXPECT_EQ(signals->signals_received(), 2);
}

void run_until_second_signal() {
  asio::io_context io;
  ShutdownSignals signals(io.get_executor(), [](int) { std::raise(SIGTERM); });
  std::raise(SIGTERM);
  io.run();
}

TEST(ShutdownSignalsDeathTest, SecondSignalExitsProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_until_second_signal(), testing::ExitedWithCode(128 + SIGTERM), "");
}

asio::awaitable<void> wait_until_cancelled(ShutdownSignals& signals, bool& aborted) {
  try {
    co_await signals.wait();
  } catch (const boost::system::system_error& e) {
    aborted = e.code() == asio::error::operation_aborted;
  }
}

TEST(ShutdownSignals, CancelEndsWaitAndLoop) {
  asio::io_context io;
  bool aborted = false;
  ShutdownSignals signals(io.get_executor(), {});

  asio::co_spawn(io, wait_until_cancelled(signals, aborted), [](std::exception_ptr e) {
    if (e) {
      std::rethrow_exception(e);
    }
  });
  asio::post(io, [&signals] { signals.cancel(); });
  io.run();

  EXPECT_TRUE(aborted);
  EXPECT_FALSE(signals.stop_requested());
}

}  // namespace
}  // namespace sluice::runtime
