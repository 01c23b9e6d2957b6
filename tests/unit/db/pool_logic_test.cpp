#include <sluice/db/detail/pool_logic.hpp>

#include <gtest/gtest.h>

namespace sluice::db::detail {
namespace {

using namespace std::chrono_literals;

const Clock::time_point kStart{std::chrono::hours{1}};

PoolOptions small_options() {
  PoolOptions options;
  options.name = "main";
  options.pool_size = 2;
  options.max_overflow = 1;
  options.connecting_limit = 0;
  return options;
}

// Opens `count` connections through waiters and returns them to idle.
void open_idle(PoolLogic& logic, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_EQ(logic.begin_acquire(kStart), AcquireAction::wait);
  }
  ASSERT_EQ(logic.connects_to_start(kStart), count);
  for (std::size_t i = 0; i < count; ++i) {
    ASSERT_EQ(logic.connect_succeeded(1ms), Placement::hand_to_waiter);
  }
  ConnectionTimes times{.created_at = kStart, .last_used = kStart};
  for (std::size_t i = 0; i < count; ++i) {
    logic.on_return(ReturnState::clean, times, kStart);
  }
}

TEST(PoolLogic, TakesIdleBeforeWaiting) {
  PoolLogic logic(small_options());
  open_idle(logic, 1);

  EXPECT_EQ(logic.idle(), 1u);
  EXPECT_EQ(logic.begin_acquire(kStart), AcquireAction::take_idle);
  EXPECT_EQ(logic.idle(), 0u);
  EXPECT_EQ(logic.in_use(), 1u);
  EXPECT_EQ(logic.waiters(), 0u);
}

TEST(PoolLogic, ConnectsStopAtSizePlusOverflow) {
  PoolLogic logic(small_options());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(logic.begin_acquire(kStart), AcquireAction::wait);
  }

  EXPECT_EQ(logic.connects_to_start(kStart), 3u);
  EXPECT_EQ(logic.connecting(), 3u);
  EXPECT_EQ(logic.connects_to_start(kStart), 0u);
}

TEST(PoolLogic, ConnectingLimitCapsConcurrentConnects) {
  auto options = small_options();
  options.connecting_limit = 2;
  PoolLogic logic(options);
  for (int i = 0; i < 3; ++i) {
    logic.begin_acquire(kStart);
  }

  EXPECT_EQ(logic.connects_to_start(kStart), 2u);
  logic.connect_succeeded(1ms);
  EXPECT_EQ(logic.connects_to_start(kStart), 1u);
}

TEST(PoolLogic, OverflowClosedWhenIdleFull) {
  PoolLogic logic(small_options());
  for (int i = 0; i < 3; ++i) {
    logic.begin_acquire(kStart);
  }
  logic.connects_to_start(kStart);
  for (int i = 0; i < 3; ++i) {
    logic.connect_succeeded(1ms);
  }
  ConnectionTimes times{.created_at = kStart, .last_used = kStart};

  EXPECT_EQ(logic.on_return(ReturnState::clean, times, kStart), Placement::keep_idle);
  EXPECT_EQ(logic.on_return(ReturnState::clean, times, kStart), Placement::keep_idle);
  EXPECT_EQ(logic.on_return(ReturnState::clean, times, kStart), Placement::close);
  EXPECT_EQ(logic.open(), 2u);
}

TEST(PoolLogic, ReturnGoesToWaiterFirst) {
  PoolLogic logic(small_options());
  open_idle(logic, 1);
  logic.begin_acquire(kStart);
  EXPECT_EQ(logic.begin_acquire(kStart), AcquireAction::wait);
  ConnectionTimes times{.created_at = kStart, .last_used = kStart};

  EXPECT_EQ(logic.on_return(ReturnState::clean, times, kStart), Placement::hand_to_waiter);
  EXPECT_EQ(logic.waiters(), 0u);
  EXPECT_EQ(logic.in_use(), 1u);
}

TEST(PoolLogic, TimeoutMessageNamesCounters) {
  PoolLogic logic(small_options());
  for (int i = 0; i < 4; ++i) {
    logic.begin_acquire(kStart);
  }
  logic.connects_to_start(kStart);
  for (int i = 0; i < 3; ++i) {
    logic.connect_succeeded(1ms);
  }

  EXPECT_EQ(logic.timeout_message(5s),
            "pool `main` timed out after 5 s: size 2, idle 0, in use 3, overflow 1/1, connecting 0, waiters 1");
}

TEST(PoolLogic, MaxWaitersRejects) {
  auto options = small_options();
  options.max_waiters = 2;
  options.max_overflow = 0;
  options.pool_size = 0;
  PoolLogic logic(options);

  EXPECT_EQ(logic.begin_acquire(kStart), AcquireAction::wait);
  EXPECT_EQ(logic.begin_acquire(kStart), AcquireAction::wait);
  EXPECT_EQ(logic.begin_acquire(kStart), AcquireAction::reject_exhausted);
  EXPECT_EQ(logic.stats().rejected_exhausted, 1u);
}

TEST(PoolLogic, FailureStreakOpensBreaker) {
  auto options = small_options();
  options.connect_failure_threshold = 2;
  PoolLogic logic(options);
  logic.begin_acquire(kStart);
  logic.connects_to_start(kStart);

  auto first = logic.connect_failed(kStart, 0.5);
  EXPECT_FALSE(first.fail_waiters);
  EXPECT_EQ(logic.connects_to_start(kStart), 0u) << "a retry is scheduled, no connect before it";
  logic.retry_due();
  EXPECT_EQ(logic.connects_to_start(first.retry_at), 1u);
  auto second = logic.connect_failed(first.retry_at, 0.5);
  EXPECT_TRUE(second.fail_waiters);
  logic.waiter_left();

  EXPECT_EQ(logic.begin_acquire(first.retry_at), AcquireAction::reject_connect_failing);
  EXPECT_EQ(logic.begin_acquire(second.retry_at), AcquireAction::wait) << "probe allowed after the backoff";
  EXPECT_EQ(logic.connects_to_start(second.retry_at), 1u);
  EXPECT_EQ(logic.begin_acquire(second.retry_at), AcquireAction::wait) << "callers wait for the probe";
  EXPECT_EQ(logic.connects_to_start(second.retry_at), 0u) << "one probe at a time";
  EXPECT_EQ(logic.connect_succeeded(1ms), Placement::hand_to_waiter);
  EXPECT_EQ(logic.connects_to_start(second.retry_at), 1u) << "breaker closed after the probe succeeded";
}

TEST(PoolLogic, BackoffStaysWithinBounds) {
  auto options = small_options();
  options.connect_failure_threshold = 0;
  options.connect_backoff_initial = 100ms;
  options.connect_backoff_max = 400ms;
  const std::chrono::nanoseconds expected_caps[] = {100ms, 200ms, 400ms, 400ms, 400ms};

  for (double uniform : {0.0, 0.999999}) {
    PoolLogic logic(options);
    logic.begin_acquire(kStart);
    for (auto cap : expected_caps) {
      ASSERT_EQ(logic.connects_to_start(kStart), 1u);
      const auto delay = logic.connect_failed(kStart, uniform).retry_at - kStart;
      logic.retry_due();
      if (uniform == 0.0) {
        EXPECT_EQ(delay, cap / 2);
      } else {
        EXPECT_LE(delay, cap);
        EXPECT_GT(delay, cap * 9 / 10);
      }
    }
  }
}

TEST(PoolLogic, RecycleExpiryHasJitter) {
  auto options = small_options();
  options.pool_recycle = 1000s;
  PoolLogic logic(options);

  EXPECT_EQ(logic.expiry_for(kStart, 0.0), kStart + 1000s);
  EXPECT_EQ(logic.expiry_for(kStart, 1.0), kStart + 975s);
  EXPECT_EQ(PoolLogic(small_options()).expiry_for(kStart, 0.5), Clock::time_point::max());
}

TEST(PoolLogic, CheckoutVerdicts) {
  auto options = small_options();
  options.pool_pre_ping = true;
  options.pre_ping_idle_threshold = 1s;
  PoolLogic logic(options);
  ConnectionTimes times{.created_at = kStart, .expires_at = kStart + 60s, .last_used = kStart};

  EXPECT_EQ(logic.check_connection(times, kStart + 500ms, true), CheckoutVerdict::use);
  EXPECT_EQ(logic.check_connection(times, kStart + 2s, true), CheckoutVerdict::ping);
  EXPECT_EQ(logic.check_connection(times, kStart + 2s, false), CheckoutVerdict::use) << "driver without pings";
  times.fresh = true;
  EXPECT_EQ(logic.check_connection(times, kStart + 2s, true), CheckoutVerdict::use) << "fresh connection";
  EXPECT_EQ(logic.check_connection(times, kStart + 61s, true), CheckoutVerdict::recycle);
  logic.invalidate(kStart + 1s);
  EXPECT_EQ(logic.check_connection(times, kStart + 2s, true), CheckoutVerdict::invalidated);
}

TEST(PoolLogic, DisconnectInvalidatesOlderConnections) {
  PoolLogic logic(small_options());
  open_idle(logic, 2);
  logic.begin_acquire(kStart);
  ConnectionTimes times{.created_at = kStart, .last_used = kStart};

  EXPECT_EQ(logic.on_return(ReturnState::disconnected, times, kStart + 1s), Placement::close);
  EXPECT_EQ(logic.invalidated_before(), kStart + 1s);
  EXPECT_EQ(logic.check_idle(times, kStart + 2s, true), MaintenanceVerdict::close_invalidated);
}

TEST(PoolLogic, DirtyReturnIsCleanedUp) {
  PoolLogic logic(small_options());
  open_idle(logic, 2);
  ConnectionTimes times{.created_at = kStart, .last_used = kStart};

  logic.begin_acquire(kStart);
  EXPECT_EQ(logic.on_return(ReturnState::in_transaction, times, kStart), Placement::clean_up);
  logic.begin_acquire(kStart);
  EXPECT_EQ(logic.on_return(ReturnState::busy, times, kStart), Placement::clean_up);
  EXPECT_EQ(logic.cleaning(), 2u);
  EXPECT_EQ(logic.cleanup_finished(true, times, kStart), Placement::keep_idle);
  EXPECT_EQ(logic.cleanup_finished(false, times, kStart), Placement::close);
  EXPECT_EQ(logic.open(), 1u);
}

TEST(PoolLogic, ResetNoneClosesTransaction) {
  auto options = small_options();
  options.reset_on_return = ResetOnReturn::none;
  PoolLogic logic(options);
  open_idle(logic, 1);
  logic.begin_acquire(kStart);
  ConnectionTimes times{.created_at = kStart, .last_used = kStart};

  EXPECT_EQ(logic.on_return(ReturnState::in_transaction, times, kStart), Placement::close);
}

TEST(PoolLogic, NullPoolClosesOnReturn) {
  PoolLogic logic(PoolOptions::null_pool());
  EXPECT_EQ(logic.begin_acquire(kStart), AcquireAction::wait);
  EXPECT_EQ(logic.connects_to_start(kStart), 1u);
  EXPECT_EQ(logic.connect_succeeded(1ms), Placement::hand_to_waiter);
  ConnectionTimes times{.created_at = kStart, .last_used = kStart};
  EXPECT_EQ(logic.on_return(ReturnState::clean, times, kStart), Placement::close);
  EXPECT_EQ(logic.open(), 0u);
}

TEST(PoolLogic, IdleTimeoutAndKeepalive) {
  auto options = small_options();
  options.idle_timeout = 60s;
  options.keepalive_interval = 10s;
  PoolLogic logic(options);
  ConnectionTimes times{.created_at = kStart, .last_used = kStart};

  EXPECT_EQ(logic.check_idle(times, kStart + 5s, true), MaintenanceVerdict::keep);
  EXPECT_EQ(logic.check_idle(times, kStart + 11s, true), MaintenanceVerdict::ping);
  EXPECT_EQ(logic.check_idle(times, kStart + 11s, false), MaintenanceVerdict::keep);
  EXPECT_EQ(logic.check_idle(times, kStart + 61s, true), MaintenanceVerdict::close_idle);
}

TEST(PoolOptions, SizedForServer) {
  auto options = PoolOptions::sized_for(4, 100, 2);
  EXPECT_EQ(options.pool_size, 8u);
  EXPECT_EQ(options.max_overflow, 8);

  auto tight = PoolOptions::sized_for(16, 23, 2);
  EXPECT_EQ(tight.pool_size, 10u);
  EXPECT_EQ(tight.max_overflow, 0);
}

}  // namespace
}  // namespace sluice::db::detail
