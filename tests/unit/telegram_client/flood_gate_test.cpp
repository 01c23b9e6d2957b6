#include <sluice/telegram/flood_control.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

namespace sluice::telegram {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Upper bound for anything a test waits for; a hang fails instead of
// blocking the test run.
constexpr auto kMaxWait = 10s;

FloodOptions per_chat_only(RateLimit per_chat) {
  FloodOptions options;
  options.global.enabled = false;
  options.per_group.enabled = false;
  options.paid_broadcast.enabled = false;
  options.callback_answers.enabled = false;
  options.per_chat = per_chat;
  return options;
}

FloodRequest message_to(std::int64_t chat) {
  return {.kind = FloodClass::message, .chat = ChatKey{chat}};
}

struct Outcome {
  bool done = false;
  std::exception_ptr error;
  Clock::time_point finished{};
};

asio::awaitable<void> wait_and_record(FloodGate& gate, FloodRequest request,
                                      std::vector<int>& order, int index) {
  co_await gate.wait(std::move(request));
  order.push_back(index);
}

void spawn_recorded(asio::io_context& io, asio::awaitable<void> task, Outcome& outcome) {
  asio::co_spawn(io, std::move(task), [&outcome](std::exception_ptr error) {
    outcome.done = true;
    outcome.error = error;
    outcome.finished = Clock::now();
  });
}

bool is_operation_aborted(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const boost::system::system_error& e) {
    return e.code() == asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

TEST(FloodGate, GrantsWaitersInOrder) {
  asio::io_context io;
  FloodGate gate(io.get_executor(), per_chat_only({.limit = 50, .period = 1s, .burst = 1}));
  std::vector<int> order;
  std::vector<Outcome> outcomes(5);

  const auto start = Clock::now();
  for (int i = 0; i < 5; ++i) {
    spawn_recorded(io, wait_and_record(gate, message_to(1), order, i), outcomes[i]);
  }
  io.run_for(kMaxWait);

  const std::vector<int> expected = {0, 1, 2, 3, 4};
  EXPECT_EQ(order, expected);
  for (const auto& outcome : outcomes) {
    ASSERT_TRUE(outcome.done);
    EXPECT_FALSE(outcome.error);
  }
  // Four intervals of 20 ms after the first grant.
  EXPECT_GE(outcomes[4].finished - start, 80ms);
}

TEST(FloodGate, CancelledWaitTakesNoBudget) {
  asio::io_context io;
  FloodGate gate(io.get_executor(), per_chat_only({.limit = 10, .period = 1s, .burst = 1}));
  std::vector<int> order;
  Outcome first;
  Outcome cancelled;
  Outcome third;
  asio::cancellation_signal signal;

  spawn_recorded(io, wait_and_record(gate, message_to(1), order, 0), first);
  asio::co_spawn(io, wait_and_record(gate, message_to(1), order, 1),
                 asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr error) {
                   cancelled.done = true;
                   cancelled.error = error;
                 }));
  spawn_recorded(io, wait_and_record(gate, message_to(1), order, 2), third);
  io.poll();
  EXPECT_EQ(gate.queued(), 2U);

  signal.emit(asio::cancellation_type::terminal);
  const auto cancelled_at = Clock::now();
  io.run_for(kMaxWait);

  ASSERT_TRUE(cancelled.done);
  EXPECT_TRUE(is_operation_aborted(cancelled.error));
  ASSERT_TRUE(third.done);
  EXPECT_FALSE(third.error);
  const std::vector<int> expected = {0, 2};
  EXPECT_EQ(order, expected);
  // The third call went one interval (100 ms) after the first, not two.
  EXPECT_LT(third.finished - cancelled_at, 190ms);
  EXPECT_EQ(gate.queued(), 0U);
}

TEST(FloodGate, DestroyWakesWaiters) {
  asio::io_context io;
  auto gate = std::make_unique<FloodGate>(
      io.get_executor(), per_chat_only({.limit = 1, .period = 1h, .burst = 1}));
  std::vector<int> order;
  Outcome first;
  Outcome waiting;

  spawn_recorded(io, wait_and_record(*gate, message_to(1), order, 0), first);
  spawn_recorded(io, wait_and_record(*gate, message_to(1), order, 1), waiting);
  io.poll();
  EXPECT_TRUE(first.done);
  EXPECT_FALSE(waiting.done);

  gate.reset();
  io.run_for(kMaxWait);
  ASSERT_TRUE(waiting.done);
  EXPECT_TRUE(is_operation_aborted(waiting.error));
}

TEST(FloodGate, BypassAndDisabledPassAtOnce) {
  asio::io_context io;
  FloodGate strict(io.get_executor(), per_chat_only({.limit = 1, .period = 1h, .burst = 1}));
  FloodOptions off;
  off.enabled = false;
  FloodGate disabled(io.get_executor(), off);
  std::vector<int> order;
  std::vector<Outcome> outcomes(4);

  strict.pause({.kind = FloodClass::other}, 3600s);
  spawn_recorded(io, wait_and_record(strict, {.kind = FloodClass::bypass}, order, 0),
                 outcomes[0]);
  spawn_recorded(io, wait_and_record(strict, {.kind = FloodClass::bypass}, order, 1),
                 outcomes[1]);
  disabled.pause({.kind = FloodClass::other}, 3600s);
  spawn_recorded(io, wait_and_record(disabled, message_to(1), order, 2), outcomes[2]);
  spawn_recorded(io, wait_and_record(disabled, message_to(1), order, 3), outcomes[3]);
  io.poll();

  EXPECT_EQ(order.size(), 4U);
}

TEST(FloodGate, PauseHoldsChatUntilRetryAfter) {
  asio::io_context io;
  FloodGate gate(io.get_executor(), per_chat_only({.limit = 100, .period = 1s, .burst = 5}));
  std::vector<int> order;
  Outcome paused_chat;
  Outcome other_chat;

  const auto start = Clock::now();
  gate.pause(message_to(1), 1s);
  ASSERT_TRUE(gate.paused_until(message_to(1)).has_value());
  spawn_recorded(io, wait_and_record(gate, message_to(1), order, 1), paused_chat);
  spawn_recorded(io, wait_and_record(gate, message_to(2), order, 2), other_chat);
  io.run_for(kMaxWait);

  ASSERT_TRUE(paused_chat.done);
  ASSERT_TRUE(other_chat.done);
  EXPECT_LT(other_chat.finished - start, 500ms);
  EXPECT_GE(paused_chat.finished - start, 1s);
  const std::vector<int> expected = {2, 1};
  EXPECT_EQ(order, expected);
}

}  // namespace
}  // namespace sluice::telegram
