#include <sluice/runtime/semaphore.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace asio = boost::asio;
using sluice::runtime::Permit;
using sluice::runtime::Semaphore;
using sluice::runtime::SemaphoreClosed;
using sluice::runtime::SemaphoreErrc;

namespace {

// Records the exception a spawned coroutine ended with, so that a test can
// fail on it instead of losing it.
struct ErrorSink {
  std::exception_ptr* slot;
  void operator()(std::exception_ptr error) const {
    if (error && !*slot) {
      *slot = error;
    }
  }
};

void rethrow_if_set(const std::exception_ptr& error) {
  if (error) {
    std::rethrow_exception(error);
  }
}

asio::awaitable<void> yield_times(int count) {
  auto executor = co_await asio::this_coro::executor;
  for (int i = 0; i < count; ++i) {
    co_await asio::post(executor, asio::use_awaitable);
  }
}

asio::awaitable<void> acquire_and_record(Semaphore* semaphore, int index, std::vector<int>* order) {
  Permit permit = co_await semaphore->acquire();
  order->push_back(index);
  co_await yield_times(1);
}

asio::awaitable<void> acquire_expect_closed(Semaphore* semaphore, int* closed_count) {
  try {
    Permit permit = co_await semaphore->acquire();
  } catch (const SemaphoreClosed& error) {
    if (error.code() == SemaphoreErrc::closed) {
      ++*closed_count;
    }
  }
}

}  // namespace

TEST(Semaphore, AcquireUpToCapacityWithoutWaiting) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 3, "test");
  std::optional<Permit> a = semaphore.try_acquire();
  std::optional<Permit> b = semaphore.try_acquire(2);
  std::optional<Permit> c = semaphore.try_acquire();
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(c.has_value());
  EXPECT_EQ(b->permits(), 2u);
  EXPECT_EQ(semaphore.available(), 0u);
  b->release();
  EXPECT_EQ(semaphore.available(), 2u);
  a.reset();
  EXPECT_EQ(semaphore.available(), 3u);
}

TEST(Semaphore, WaitersAreServedInFifoOrder) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 1, "fifo");
  std::optional<Permit> held = semaphore.try_acquire();
  std::vector<int> order;
  std::exception_ptr error;
  for (int i = 0; i < 10; ++i) {
    asio::co_spawn(io, acquire_and_record(&semaphore, i, &order), ErrorSink{&error});
  }
  io.poll();
  EXPECT_EQ(semaphore.waiters(), 10u);
  held.reset();
  io.run();
  rethrow_if_set(error);
  std::vector<int> expected{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(order, expected);
  EXPECT_EQ(semaphore.available(), 1u);
}

TEST(Semaphore, ReleaseHandsPermitToHeadWaiter) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 1, "handoff");
  std::optional<Permit> held = semaphore.try_acquire();
  std::optional<Permit> granted;
  semaphore.async_acquire([&](boost::system::error_code error, Permit permit) {
    EXPECT_FALSE(error) << error.message();
    granted = std::move(permit);
  });
  held.reset();

  // The permit now travels to the waiter, so no other caller can take it.
  EXPECT_EQ(semaphore.available(), 0u);
  EXPECT_FALSE(semaphore.try_acquire().has_value());
  io.run();
  ASSERT_TRUE(granted.has_value());
  EXPECT_TRUE(static_cast<bool>(*granted));
}

TEST(Semaphore, LargeHeadRequestBlocksSmallerOnes) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 3, "multi");
  std::optional<Permit> held = semaphore.try_acquire(2);
  std::vector<std::string> order;
  semaphore.async_acquire(3, [&](boost::system::error_code, Permit) { order.push_back("three"); });
  semaphore.async_acquire(1, [&](boost::system::error_code, Permit) { order.push_back("one"); });
  io.poll();
  EXPECT_TRUE(order.empty());
  EXPECT_EQ(semaphore.available(), 1u);
  held.reset();
  io.run();
  std::vector<std::string> expected{"three", "one"};
  EXPECT_EQ(order, expected);
  EXPECT_EQ(semaphore.available(), 3u);
}

TEST(Semaphore, CancelledWaiterTakesNoPermit) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 1, "cancel");
  std::optional<Permit> held = semaphore.try_acquire();
  asio::cancellation_signal signal;
  boost::system::error_code result;
  bool had_permit = true;
  semaphore.async_acquire(asio::bind_cancellation_slot(signal.slot(), [&](boost::system::error_code error,
                                                                           Permit permit) {
    result = error;
    had_permit = static_cast<bool>(permit);
  }));
  EXPECT_EQ(semaphore.waiters(), 1u);
  signal.emit(asio::cancellation_type::terminal);
  EXPECT_EQ(semaphore.waiters(), 0u);
  io.run();
  EXPECT_EQ(result, asio::error::operation_aborted);
  EXPECT_FALSE(had_permit);
  held.reset();
  EXPECT_EQ(semaphore.available(), 1u);
}

TEST(Semaphore, CancelledHeadUnblocksSmallerWaiter) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 2, "head");
  std::optional<Permit> held = semaphore.try_acquire();
  asio::cancellation_signal signal;
  boost::system::error_code big_result;
  bool small_granted = false;
  semaphore.async_acquire(2, asio::bind_cancellation_slot(signal.slot(), [&](boost::system::error_code error,
                                                                              Permit) { big_result = error; }));
  semaphore.async_acquire(1, [&](boost::system::error_code error, Permit permit) {
    small_granted = !error && permit.permits() == 1;
  });
  signal.emit(asio::cancellation_type::terminal);
  io.run();
  EXPECT_EQ(big_result, asio::error::operation_aborted);
  EXPECT_TRUE(small_granted);
  EXPECT_EQ(semaphore.available(), 1u);
}

TEST(Semaphore, GrantedPermitDroppedByCancelledWaiterReturns) {
  // The permit is granted, then the waiter is cancelled before the grant is
  // delivered: the cancellation is too late, and the permit comes back when
  // the handler drops it.
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 1, "late");
  std::optional<Permit> held = semaphore.try_acquire();
  asio::cancellation_signal signal;
  boost::system::error_code result = asio::error::would_block;
  semaphore.async_acquire(
      asio::bind_cancellation_slot(signal.slot(), [&](boost::system::error_code error, Permit) { result = error; }));
  held.reset();
  signal.emit(asio::cancellation_type::terminal);
  EXPECT_EQ(semaphore.available(), 0u);
  io.run();
  EXPECT_FALSE(result);
  EXPECT_EQ(semaphore.available(), 1u);
}

TEST(Semaphore, CloseWakesEveryWaiter) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 1, "closing");
  std::optional<Permit> held = semaphore.try_acquire();
  int closed_count = 0;
  std::exception_ptr error;
  for (int i = 0; i < 10; ++i) {
    asio::co_spawn(io, acquire_expect_closed(&semaphore, &closed_count), ErrorSink{&error});
  }
  io.poll();
  EXPECT_EQ(semaphore.waiters(), 10u);
  semaphore.close();
  io.run();
  rethrow_if_set(error);
  EXPECT_EQ(closed_count, 10);
  EXPECT_EQ(semaphore.waiters(), 0u);

  // Acquisitions after close fail at once; held permits still come back.
  EXPECT_FALSE(semaphore.try_acquire().has_value());
  io.restart();
  asio::co_spawn(io, acquire_expect_closed(&semaphore, &closed_count), ErrorSink{&error});
  io.run();
  EXPECT_EQ(closed_count, 11);
  held.reset();
  EXPECT_EQ(semaphore.available(), 1u);
}

TEST(Semaphore, DestroyedSemaphoreClosesWaiters) {
  asio::io_context io;
  auto semaphore = std::make_unique<Semaphore>(io.get_executor(), 1, "gone");
  std::optional<Permit> held = semaphore->try_acquire();
  int closed_count = 0;
  std::exception_ptr error;
  asio::co_spawn(io, acquire_expect_closed(semaphore.get(), &closed_count), ErrorSink{&error});
  io.poll();
  semaphore.reset();
  io.run();
  rethrow_if_set(error);
  EXPECT_EQ(closed_count, 1);
  held.reset();  // must not touch freed memory (checked under ASan)
}

TEST(Semaphore, OversizedRequestIsRejected) {
  asio::io_context io;
  Semaphore semaphore(io.get_executor(), 2, "small");
  boost::system::error_code result;
  semaphore.async_acquire(3, [&](boost::system::error_code error, Permit) { result = error; });
  io.run();
  EXPECT_EQ(result, asio::error::invalid_argument);
  EXPECT_EQ(semaphore.waiters(), 0u);
}

namespace {

using namespace asio::experimental::awaitable_operators;

// Counts what happened to the stress test's waiters.
struct StressCounts {
  int granted = 0;
  int aborted = 0;
  int race_won_by_timer = 0;
  int race_won_by_acquire = 0;
};

asio::awaitable<void> hold_for(Semaphore* semaphore, int yields, StressCounts* counts) {
  Permit permit = co_await semaphore->acquire();
  ++counts->granted;
  co_await yield_times(yields);
}

asio::awaitable<void> acquire_until_cancelled(Semaphore* semaphore, int yields, StressCounts* counts) {
  try {
    Permit permit = co_await semaphore->acquire();
    ++counts->granted;
    co_await yield_times(yields);
  } catch (const boost::system::system_error& error) {
    if (error.code() != asio::error::operation_aborted) {
      throw;
    }
    ++counts->aborted;
  }
}

void count_race(const std::variant<Permit, std::monostate>& result, StressCounts* counts) {
  if (result.index() == 0) {
    ++counts->race_won_by_acquire;
  } else {
    ++counts->race_won_by_timer;
  }
}

// Races an acquire against a timer that expires within a millisecond.
asio::awaitable<void> race_with_timer(Semaphore* semaphore, int microseconds, StressCounts* counts) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, std::chrono::microseconds(microseconds));
  auto acquire = semaphore->acquire();
  auto wait = timer.async_wait(asio::use_awaitable);
  auto race = std::move(acquire) || std::move(wait);
  std::variant<Permit, std::monostate> result = co_await std::move(race);
  count_race(result, counts);
}

// Races an acquire against a few turns of the loop, which makes the outcome
// depend only on the order of events, not on the clock.
asio::awaitable<void> race_with_yields(Semaphore* semaphore, int yields, StressCounts* counts) {
  auto acquire = semaphore->acquire();
  auto yielding = yield_times(yields);
  auto race = std::move(acquire) || std::move(yielding);
  std::variant<Permit, std::monostate> result = co_await std::move(race);
  count_race(result, counts);
}

}  // namespace

TEST(Semaphore, RandomCancellationsKeepPermitCountExact) {
  constexpr std::size_t kCapacity = 8;
  constexpr int kBatches = 100;
  constexpr int kWaitersPerBatch = 1000;
  std::mt19937 random(20240611);
  std::uniform_int_distribution<int> kind_of(0, 3);
  std::uniform_int_distribution<int> microseconds_of(0, 1000);
  std::uniform_int_distribution<int> yields_of(0, 3);

  asio::io_context io;
  Semaphore semaphore(io.get_executor(), kCapacity, "stress");
  StressCounts counts;
  std::exception_ptr error;
  for (int batch = 0; batch < kBatches; ++batch) {
    std::deque<asio::cancellation_signal> signals;
    std::vector<std::pair<asio::cancellation_signal*, int>> cancel_after;
    for (int i = 0; i < kWaitersPerBatch; ++i) {
      int kind = kind_of(random);
      int yields = yields_of(random);
      if (kind == 0) {
        asio::co_spawn(io, hold_for(&semaphore, yields, &counts), ErrorSink{&error});
      } else if (kind == 1) {
        asio::cancellation_signal& signal = signals.emplace_back();
        asio::co_spawn(io, acquire_until_cancelled(&semaphore, yields, &counts),
                       asio::bind_cancellation_slot(signal.slot(), ErrorSink{&error}));
        cancel_after.emplace_back(&signal, yields_of(random));
      } else if (kind == 2) {
        asio::co_spawn(io, race_with_timer(&semaphore, microseconds_of(random), &counts), ErrorSink{&error});
      } else {
        asio::co_spawn(io, race_with_yields(&semaphore, yields, &counts), ErrorSink{&error});
      }
    }

    // Emit the cancellations from the loop, a few turns apart.
    for (int turn = 0; turn <= 3; ++turn) {
      io.poll_one();
      for (auto& [signal, when] : cancel_after) {
        if (when == turn) {
          signal->emit(asio::cancellation_type::terminal);
        }
      }
    }
    io.run();
    io.restart();
    rethrow_if_set(error);
    ASSERT_EQ(semaphore.available(), kCapacity) << "batch " << batch;
    ASSERT_EQ(semaphore.waiters(), 0u) << "batch " << batch;
  }

  std::printf("granted=%d aborted=%d race_won_by_acquire=%d race_won_by_timer=%d\n", counts.granted,
              counts.aborted, counts.race_won_by_acquire, counts.race_won_by_timer);
  EXPECT_GT(counts.aborted, 0);
  EXPECT_GT(counts.race_won_by_timer, 0);
  EXPECT_GT(counts.race_won_by_acquire, 0);
}

TEST(Semaphore, PermitOutlivesContext) {
  // Waiters still queued when the io_context is destroyed are destroyed
  // with it (their frames freed, so no leak under ASan), and a permit that
  // outlives the io_context can still be dropped.
  auto io = std::make_unique<asio::io_context>();
  std::optional<Permit> held;
  int closed_count = 0;
  {
    Semaphore semaphore(io->get_executor(), 1, "shutdown");
    held = semaphore.try_acquire();
    std::exception_ptr error;
    for (int i = 0; i < 3; ++i) {
      asio::co_spawn(*io, acquire_expect_closed(&semaphore, &closed_count), ErrorSink{&error});
    }
    io->poll();
    EXPECT_EQ(semaphore.waiters(), 3u);
    io->stop();
  }
  io.reset();
  held.reset();
  EXPECT_EQ(closed_count, 0);
}

TEST(Semaphore, ContextShutdownDestroysQueuedFrames) {
  auto io = std::make_unique<asio::io_context>();
  auto semaphore = std::make_unique<Semaphore>(io->get_executor(), 1, "parked");
  std::optional<Permit> held = semaphore->try_acquire();
  int closed_count = 0;
  std::exception_ptr error;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(*io, acquire_expect_closed(semaphore.get(), &closed_count), ErrorSink{&error});
  }
  io->poll();
  EXPECT_EQ(semaphore->waiters(), 3u);
  io.reset();
  EXPECT_EQ(semaphore->waiters(), 0u);
  EXPECT_EQ(closed_count, 0);
  held.reset();
  semaphore.reset();
}
