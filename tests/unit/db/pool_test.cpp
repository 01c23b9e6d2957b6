#include <sluice/db/pool.hpp>

#include <random>
#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "unit/db/coro_test_support.hpp"
#include "unit/db/fake_driver.hpp"

namespace sluice::db::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using FakePool = Pool<FakeDriver>;

PoolOptions options_with(std::size_t size, std::int32_t overflow) {
  PoolOptions options;
  options.pool_size = size;
  options.max_overflow = overflow;
  options.hold_warning_threshold = 0ms;
  return options;
}

// Acquires, runs a statement of `hold`, returns.
asio::awaitable<void> hold_for(FakePool* pool, std::chrono::milliseconds hold) {
  auto conn = co_await pool->acquire();
  co_await conn->query(hold);
}

void spawn_counted(asio::any_io_executor executor, asio::awaitable<void> task, WaitGroup* group,
                   int* failures = nullptr) {
  group->add();
  asio::co_spawn(executor, std::move(task), [group, failures](std::exception_ptr error) {
    if (error && failures != nullptr) {
      ++*failures;
    }
    group->done();
  });
}

TEST(Pool, LimitsOpenConnections) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(5, 10));
    WaitGroup group(ioc.get_executor());
    int failures = 0;
    for (int i = 0; i < 50; ++i) {
      spawn_counted(ioc.get_executor(), hold_for(&pool, 10ms), &group, &failures);
    }
    co_await group.wait();

    EXPECT_EQ(failures, 0);
    EXPECT_LE(server.max_open, 15u);
    EXPECT_GE(server.max_open, 10u);
    EXPECT_EQ(server.open, 5u) << "overflow connections close on return";
    EXPECT_EQ(pool.stats().idle, 5u);
    EXPECT_EQ(pool.stats().acquired, 50u);
    EXPECT_LE(server.max_connecting, 2u) << "connecting_limit";
  });
}

asio::awaitable<void> record_order(FakePool* pool, int index, std::vector<int>* order) {
  auto conn = co_await pool->acquire();
  order->push_back(index);
}

TEST(Pool, ServesWaitersInFifoOrder) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(1, 0));
    auto first = co_await pool.acquire();
    std::vector<int> order;
    WaitGroup group(ioc.get_executor());
    for (int i = 0; i < 8; ++i) {
      spawn_counted(ioc.get_executor(), record_order(&pool, i, &order), &group);
      co_await yield_once();
    }
    EXPECT_EQ(pool.stats().waiters, 8u);
    first.reset();
    co_await group.wait();

    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  });
}

TEST(Pool, TimeoutMessageNamesPoolAndCounters) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = options_with(2, 1);
    options.pool_timeout = 50ms;
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options);
    auto a = co_await pool.acquire();
    auto b = co_await pool.acquire();
    auto c = co_await pool.acquire();
    std::string message;
    const auto start = Clock::now();
    try {
      auto d = co_await pool.acquire();
    } catch (const PoolTimeoutError& e) {
      message = e.what();
    }
    const auto waited = Clock::now() - start;

    EXPECT_EQ(message,
              "pool `main` timed out after 50 ms: size 2, idle 0, in use 3, overflow 1/1, connecting 0, waiters 1");
    EXPECT_GE(waited, 50ms);
    EXPECT_EQ(pool.stats().timeouts, 1u);
    EXPECT_EQ(pool.stats().waiters, 0u);
  });
}

TEST(Pool, CallerDeadlineShortensWait) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(1, 0));
    auto held = co_await pool.acquire();
    const auto start = Clock::now();
    bool timed_out = false;
    try {
      auto second = co_await pool.acquire(start + 20ms);
    } catch (const PoolTimeoutError&) {
      timed_out = true;
    }
    const auto waited = Clock::now() - start;

    EXPECT_TRUE(timed_out);
    EXPECT_GE(waited, 20ms);
    EXPECT_LT(waited, 10s) << "pool_timeout (30 s) must not apply";
  });
}

TEST(Pool, MaxWaitersRejectsAtOnce) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = options_with(1, 0);
    options.max_waiters = 2;
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options);
    auto held = co_await pool.acquire();
    WaitGroup group(ioc.get_executor());
    std::vector<int> order;
    spawn_counted(ioc.get_executor(), record_order(&pool, 0, &order), &group);
    spawn_counted(ioc.get_executor(), record_order(&pool, 1, &order), &group);
    co_await yield_once();
    bool rejected = false;
    try {
      auto third = co_await pool.acquire();
    } catch (const PoolExhaustedError& e) {
      rejected = true;
      EXPECT_NE(std::string(e.what()).find("max_waiters (2)"), std::string::npos) << e.what();
    }
    held.reset();
    co_await group.wait();

    EXPECT_TRUE(rejected);
    EXPECT_EQ(order.size(), 2u);
  });
}

TEST(Pool, RecycleReplacesOldConnection) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = options_with(1, 0);
    options.pool_recycle = 30ms;
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options);
    std::size_t first_id = 0;
    {
      auto conn = co_await pool.acquire();
      first_id = conn->id();
    }
    co_await sleep_for(10ms);
    {
      auto conn = co_await pool.acquire();
      EXPECT_EQ(conn->id(), first_id) << "younger than pool_recycle";
    }
    co_await sleep_for(40ms);
    auto conn = co_await pool.acquire();

    EXPECT_NE(conn->id(), first_id);
    EXPECT_EQ(server.open, 1u);
    EXPECT_EQ(pool.stats().recycled, 1u);
  });
}

TEST(Pool, PrePingFailureInvalidatesOlderConnections) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = options_with(3, 0);
    options.pool_pre_ping = true;
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options);
    {
      auto a = co_await pool.acquire();
      auto b = co_await pool.acquire();
      auto c = co_await pool.acquire();
    }
    EXPECT_EQ(pool.stats().idle, 3u);
    server.restart();

    auto conn = co_await pool.acquire();

    EXPECT_TRUE(conn->alive());
    EXPECT_EQ(pool.stats().ping_failures, 1u);
    EXPECT_EQ(pool.stats().idle, 0u) << "every idle connection older than the failure is closed";
    EXPECT_EQ(server.open, 1u);
    EXPECT_EQ(server.pings, 1u) << "one failed ping, the others are invalidated without a ping";
  });
}

TEST(Pool, PrePingSkipsRecentlyUsed) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = options_with(1, 0);
    options.pool_pre_ping = true;
    options.pre_ping_idle_threshold = 10s;
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options);
    for (int i = 0; i < 3; ++i) {
      auto conn = co_await pool.acquire();
    }

    EXPECT_EQ(server.pings, 0u);
  });
}

TEST(Pool, DisconnectOnReturnInvalidatesIdle) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(3, 0));
    {
      auto a = co_await pool.acquire();
      auto b = co_await pool.acquire();
      auto c = co_await pool.acquire();
    }
    server.restart();
    {
      auto conn = co_await pool.acquire();
      bool lost = false;
      try {
        co_await conn->query(0ms);
      } catch (const ConnectionLostError&) {
        lost = true;
      }
      EXPECT_TRUE(lost);
    }

    EXPECT_EQ(pool.stats().open, 0u);
    EXPECT_EQ(server.open, 0u);
    auto fresh = co_await pool.acquire();
    EXPECT_TRUE(fresh->alive());
  });
}

asio::awaitable<void> query_then_throw(FakePool* pool) {
  auto conn = co_await pool->acquire();
  conn->begin();
  co_await conn->query(0ms);
  throw std::runtime_error("handler failed");
}

TEST(Pool, TransactionRolledBackWhenHolderThrows) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(1, 0));
    bool threw = false;
    try {
      co_await query_then_throw(&pool);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    auto conn = co_await pool.acquire();

    EXPECT_TRUE(threw);
    EXPECT_FALSE(conn->in_transaction_);
    EXPECT_EQ(server.resets, 1u);
    EXPECT_EQ(server.connects, 1u) << "the rolled back connection is reused";
  });
}

TEST(Pool, CancelledQueryIsDrainedAndReused) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(1, 0));
    asio::cancellation_signal signal;
    WaitGroup group(ioc.get_executor());
    group.add();
    asio::co_spawn(ioc.get_executor(), hold_for(&pool, 10s),
                   asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr) { group.done(); }));
    co_await sleep_for(5ms);
    signal.emit(asio::cancellation_type::terminal);
    co_await group.wait();
    EXPECT_EQ(pool.stats().cleaning, 1u);
    auto conn = co_await pool.acquire();

    EXPECT_FALSE(conn->busy_);
    EXPECT_EQ(server.connects, 1u);
    EXPECT_EQ(pool.stats().cleanups, 1u);
  });
}

TEST(Pool, CancelledWaiterTakesNoConnection) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(1, 0));
    auto held = co_await pool.acquire();
    asio::cancellation_signal signal;
    WaitGroup group(ioc.get_executor());
    std::vector<int> order;
    group.add();
    bool aborted = false;
    asio::co_spawn(ioc.get_executor(), record_order(&pool, 0, &order),
                   asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e) {
                     aborted = e != nullptr;
                     group.done();
                   }));
    co_await yield_once();
    signal.emit(asio::cancellation_type::terminal);
    co_await group.wait();
    held.reset();

    EXPECT_TRUE(aborted);
    EXPECT_TRUE(order.empty());
    EXPECT_EQ(pool.stats().waiters, 0u);
    EXPECT_EQ(pool.stats().idle, 1u);
  });
}

TEST(Pool, RaceLoserHandleIsReturned) {
  using namespace asio::experimental::awaitable_operators;
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(2, 0));
    {
      auto a = co_await pool.acquire();
      auto b = co_await pool.acquire();
    }
    for (int i = 0; i < 100; ++i) {
      auto first = pool.acquire();
      auto second = pool.acquire();
      auto winner = co_await (std::move(first) || std::move(second));
      EXPECT_EQ(pool.stats().in_use, 1u);
    }

    EXPECT_EQ(pool.stats().in_use, 0u);
    EXPECT_EQ(pool.stats().idle, 2u);
    EXPECT_EQ(server.open, 2u);
  });
}

TEST(Pool, FailsFastWhileServerDown) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = options_with(2, 0);
    options.pool_timeout = 20s;
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options);
    server.up = false;

    auto start = Clock::now();
    std::string first_error;
    try {
      auto conn = co_await pool.acquire();
    } catch (const ConnectError& e) {
      first_error = e.what();
    }
    EXPECT_LT(Clock::now() - start, 2s) << "must not wait out pool_timeout";
    EXPECT_NE(first_error.find("connection refused by the fake server"), std::string::npos) << first_error;

    start = Clock::now();
    bool rejected = false;
    try {
      auto conn = co_await pool.acquire();
    } catch (const ConnectError&) {
      rejected = true;
    }
    EXPECT_TRUE(rejected);
    EXPECT_LT(Clock::now() - start, 100ms);
    EXPECT_GE(pool.stats().rejected_connect_failing, 1u);

    server.up = true;
    co_await sleep_for(options.connect_backoff_max + 50ms);
    auto conn = co_await pool.acquire();
    EXPECT_TRUE(conn->alive());
  });
}

TEST(Pool, NullPoolConnectsPerCheckout) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), PoolOptions::null_pool());
    for (int i = 0; i < 3; ++i) {
      auto conn = co_await pool.acquire();
      EXPECT_EQ(server.open, 1u);
    }

    EXPECT_EQ(server.open, 0u);
    EXPECT_EQ(server.connects, 3u);
  });
}

TEST(Pool, TryAcquireTakesIdleOnly) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(1, 0));
    EXPECT_FALSE(pool.try_acquire().has_value());
    { auto conn = co_await pool.acquire(); }
    auto conn = pool.try_acquire();

    EXPECT_TRUE(conn.has_value());
    EXPECT_FALSE(pool.try_acquire().has_value());
  });
}

TEST(Pool, IdleTimeoutClosesIdleConnections) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = options_with(2, 0);
    options.idle_timeout = 30ms;
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options);
    {
      auto a = co_await pool.acquire();
      auto b = co_await pool.acquire();
    }
    EXPECT_EQ(server.open, 2u);
    for (int i = 0; i < 100 && server.open > 0; ++i) {
      co_await sleep_for(10ms);
    }

    EXPECT_EQ(server.open, 0u);
    EXPECT_EQ(pool.stats().idle, 0u);
  });
}

TEST(Pool, CloseFailsWaitersAndDrains) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(1, 0));
    auto held = co_await pool.acquire();
    WaitGroup group(ioc.get_executor());
    int failures = 0;
    std::vector<int> order;
    spawn_counted(ioc.get_executor(), record_order(&pool, 0, &order), &group, &failures);
    co_await yield_once();
    co_await pool.close();
    co_await group.wait();
    held.reset();

    EXPECT_EQ(failures, 1);
    EXPECT_EQ(server.open, 0u);
    EXPECT_EQ(pool.stats().background_tasks, 0u);
    bool closed = false;
    try {
      auto conn = co_await pool.acquire();
    } catch (const PoolClosedError&) {
      closed = true;
    }
    EXPECT_TRUE(closed);
  });
}

#ifndef NDEBUG
asio::awaitable<void> acquire_twice(FakePool* pool) {
  auto first = co_await pool->acquire();
  auto second = co_await pool->acquire();
}

TEST(Pool, SecondAcquireInSameTaskWarns) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  detail::db_logger()->sinks().push_back(sink);
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options_with(2, 0));
    asio::cancellation_signal signal;
    WaitGroup group(ioc.get_executor());
    group.add();
    asio::co_spawn(ioc.get_executor(), acquire_twice(&pool),
                   asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr) { group.done(); }));
    co_await group.wait();
  });
  detail::db_logger()->sinks().pop_back();

  bool warned = false;
  for (const auto& line : sink->last_formatted()) {
    if (line.find("second connection") != std::string::npos && line.find("pool_test.cpp") != std::string::npos) {
      warned = true;
    }
  }
  EXPECT_TRUE(warned);
}
#endif

// One worker of the cancellation storm: acquires, maybe opens a
// transaction, runs a short statement.
asio::awaitable<void> storm_worker(FakePool* pool, int mode) {
  auto conn = co_await pool->acquire();
  if (mode == 1) {
    conn->begin();
  }
  if (mode != 2) {
    co_await conn->query(std::chrono::milliseconds{mode == 3 ? 1 : 0});
  }
}

TEST(Pool, RandomCancellationsLeakNothing) {
  FakeServer server;
  asio::io_context ioc;
  run_on(ioc, [&]() -> asio::awaitable<void> {
    auto options = options_with(3, 2);
    options.max_waiters = 0;
    FakePool pool(ioc.get_executor(), FakeDriver(server, ioc.get_executor()), options);
    std::mt19937 random(12345);
    constexpr int kBatch = 32;
    constexpr long kCancellations = 100'000;
    long cancellations = 0;
    long completed = 0;
    const asio::cancellation_type kTypes[] = {asio::cancellation_type::terminal, asio::cancellation_type::partial,
                                              asio::cancellation_type::total};

    while (cancellations < kCancellations) {
      std::array<asio::cancellation_signal, kBatch> signals;
      WaitGroup group(ioc.get_executor());
      for (int i = 0; i < kBatch; ++i) {
        group.add();
        asio::co_spawn(ioc.get_executor(), storm_worker(&pool, static_cast<int>(random() % 4)),
                       asio::bind_cancellation_slot(signals[static_cast<std::size_t>(i)].slot(),
                                                    [&](std::exception_ptr error) {
                                                      completed += error ? 0 : 1;
                                                      group.done();
                                                    }));
      }
      const int yields = static_cast<int>(random() % 4);
      for (int i = 0; i < yields; ++i) {
        co_await yield_once();
      }
      for (auto& signal : signals) {
        if (random() % 10 < 7) {
          signal.emit(kTypes[random() % 3]);
          ++cancellations;
        }
      }
      co_await group.wait();
    }
    // Let clean-ups of cancelled statements finish.
    for (int i = 0; i < 500 && pool.stats().cleaning > 0; ++i) {
      co_await sleep_for(2ms);
    }
    const auto stats = pool.stats();

    EXPECT_GT(completed, 0);
    EXPECT_EQ(stats.in_use, 0u);
    EXPECT_EQ(stats.waiters, 0u);
    EXPECT_EQ(stats.cleaning, 0u);
    EXPECT_EQ(stats.open, stats.idle);
    EXPECT_EQ(server.open, stats.open);
    EXPECT_LE(server.max_open, 5u);
    auto conn = co_await pool.acquire();
    EXPECT_FALSE(conn->busy_);
    EXPECT_FALSE(conn->in_transaction_);
  });
}

}  // namespace
}  // namespace sluice::db::testing
