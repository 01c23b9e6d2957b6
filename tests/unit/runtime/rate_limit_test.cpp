#include <sluice/runtime/rate_limit.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice::runtime {
namespace {

using namespace std::chrono_literals;

// Simulated time starts at an arbitrary point far from the clock's epoch.
const RateClock::time_point kStart = RateClock::time_point{} + 1000h;

std::int64_t to_us(RateClock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

TEST(TokenBucket, AdmitsRateOverTenSeconds) {
  constexpr int kBurst = 5;
  TokenBucket bucket(30.0, kBurst);
  int admitted = 0;

  // A request every millisecond keeps the bucket empty after the burst.
  for (auto t = 0ms; t < 10s; t += 1ms) {
    if (bucket.try_acquire(kStart + t)) {
      ++admitted;
    }
  }

  EXPECT_GE(admitted - kBurst, 299) << "admitted " << admitted;
  EXPECT_LE(admitted - kBurst, 301) << "admitted " << admitted;
}

TEST(TokenBucket, BurstOfOneLosesLateTime) {
  TokenBucket bucket(30.0, 1);
  int admitted = 0;

  // With room for one token, the time between a token becoming available
  // and the next 1 ms probe is lost, as in any token bucket of capacity 1.
  for (auto t = 0ms; t < 10s; t += 1ms) {
    if (bucket.try_acquire(kStart + t)) {
      ++admitted;
    }
  }

  EXPECT_GE(admitted, 290) << "admitted " << admitted;
  EXPECT_LE(admitted, 301) << "admitted " << admitted;
}

TEST(TokenBucket, BurstThenSustainedRate) {
  TokenBucket bucket(30.0, 5);

  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(bucket.try_acquire(kStart)) << "request " << i;
  }
  RateDecision sixth = bucket.try_acquire(kStart);

  EXPECT_FALSE(sixth.allowed);
  EXPECT_NEAR(to_us(sixth.retry_after), 33'333, 1) << to_us(sixth.retry_after);
  EXPECT_TRUE(bucket.try_acquire(kStart + sixth.retry_after));
  EXPECT_FALSE(bucket.try_acquire(kStart + sixth.retry_after));
}

TEST(TokenBucket, RetryAfterIsExact) {
  TokenBucket bucket(10.0, 1);
  ASSERT_TRUE(bucket.try_acquire(kStart));

  RateDecision early = bucket.try_acquire(kStart + 40ms);

  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.retry_after, 60ms);
  EXPECT_EQ(bucket.time_until_available(kStart + 40ms), 60ms);
  EXPECT_FALSE(bucket.try_acquire(kStart + 100ms - 1ns));
  EXPECT_TRUE(bucket.try_acquire(kStart + 100ms));
}

TEST(TokenBucket, WeightedRequestsUseTokens) {
  TokenBucket bucket(1.0, 4);

  EXPECT_TRUE(bucket.try_acquire(kStart, 3));
  EXPECT_DOUBLE_EQ(bucket.available(kStart), 1.0);
  EXPECT_FALSE(bucket.try_acquire(kStart, 2));
  EXPECT_EQ(bucket.time_until_available(kStart, 2), 1s);
  EXPECT_TRUE(bucket.try_acquire(kStart + 1s, 2));
}

TEST(TokenBucket, ReservationsQueueInOrder) {
  TokenBucket bucket(20.0, 1);

  EXPECT_EQ(bucket.reserve(kStart), 0ms);
  EXPECT_EQ(bucket.reserve(kStart), 50ms);
  EXPECT_EQ(bucket.reserve(kStart), 100ms);
  EXPECT_FALSE(bucket.try_acquire(kStart + 140ms));
  EXPECT_TRUE(bucket.try_acquire(kStart + 150ms));
}

TEST(TokenBucket, PauseUntilBlocksThenRefills) {
  TokenBucket bucket(1.0, 3);

  bucket.pause_until(kStart + 5s);

  EXPECT_FALSE(bucket.try_acquire(kStart + 4s));
  EXPECT_EQ(bucket.time_until_available(kStart + 4s), 1s);
  EXPECT_TRUE(bucket.try_acquire(kStart + 5s));
  EXPECT_FALSE(bucket.try_acquire(kStart + 5s));
  EXPECT_TRUE(bucket.try_acquire(kStart + 6s));
}

TEST(TokenBucket, RejectsInvalidParameters) {
  EXPECT_THROW(TokenBucket(0.0, 1), std::invalid_argument);
  EXPECT_THROW(TokenBucket(-1.0, 1), std::invalid_argument);
  EXPECT_THROW(TokenBucket(1.0, 0), std::invalid_argument);
  TokenBucket bucket(1.0, 2);
  EXPECT_THROW(bucket.try_acquire(kStart, 3), std::invalid_argument);
  EXPECT_THROW(bucket.try_acquire(kStart, 0), std::invalid_argument);
}

boost::asio::awaitable<void> acquire_three(TokenBucket& bucket, std::vector<RateClock::time_point>& at) {
  for (int i = 0; i < 3; ++i) {
    co_await bucket.acquire();
    at.push_back(RateClock::now());
  }
}

TEST(TokenBucket, AcquireWaitsForTokens) {
  boost::asio::io_context io;
  TokenBucket bucket(50.0, 1);
  std::vector<RateClock::time_point> at;
  std::exception_ptr error;

  boost::asio::co_spawn(io, acquire_three(bucket, at), [&error](std::exception_ptr e) { error = e; });
  io.run();

  EXPECT_EQ(error, nullptr);
  ASSERT_EQ(at.size(), 3u);
  // 50 per second is one token per 20 ms; the timer never fires early.
  EXPECT_GE(at[2] - at[0], 39ms) << to_us(at[2] - at[0]) << " us";
}

TEST(KeyedGcra, HoldsRatePerKey) {
  constexpr int kKeys = 10'000;
  KeyedGcra<int> limiter(1.0, 3);
  std::vector<int> admitted(kKeys, 0);

  // Every key sends a request every 500 ms for 10 s.
  for (auto t = 0ms; t < 10s; t += 500ms) {
    for (int key = 0; key < kKeys; ++key) {
      if (limiter.try_acquire(key, kStart + t)) {
        ++admitted[static_cast<std::size_t>(key)];
      }
    }
  }

  // The burst of 3 plus one per second: allowed at 0, 0.5, 1, 1.5, then at
  // 2 s ... 9 s.
  int wrong = 0;
  for (int key = 0; key < kKeys; ++key) {
    if (admitted[static_cast<std::size_t>(key)] != 12) {
      ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(admitted[0], 12);
  EXPECT_EQ(admitted[kKeys - 1], 12);
}

TEST(KeyedGcra, KeysAreIndependent) {
  KeyedGcra<std::int64_t> limiter(1.0, 1);

  EXPECT_TRUE(limiter.try_acquire(1, kStart));
  RateDecision again = limiter.try_acquire(1, kStart + 200ms);
  EXPECT_FALSE(again.allowed);
  EXPECT_EQ(again.retry_after, 800ms);
  EXPECT_TRUE(limiter.try_acquire(2, kStart + 200ms));
  EXPECT_EQ(limiter.time_until_available(3, kStart), 0ms);
}

TEST(KeyedGcra, IdleKeysAreEvicted) {
  constexpr int kKeys = 10'000;
  KeyedGcra<int> limiter(1.0, 1);
  for (int key = 0; key < kKeys; ++key) {
    ASSERT_TRUE(limiter.try_acquire(key, kStart));
  }
  ASSERT_EQ(limiter.size(), static_cast<std::size_t>(kKeys));

  // One busy key keeps calling after the others went idle at kStart + 1 s.
  int calls = 0;
  for (auto t = kStart + 1s; limiter.size() > 1 && calls < 100'000; t += 1s) {
    limiter.try_acquire(-1, t);
    ++calls;
  }

  EXPECT_EQ(limiter.size(), 1u);
  EXPECT_LE(calls, kKeys) << "calls needed to evict every idle key: " << calls;
}

TEST(KeyedGcra, MemoryStaysBoundedWithManyKeys) {
  KeyedGcra<int> limiter(1.0, 1);
  std::size_t max_size = 0;

  // One new key per millisecond; each is idle one second after its request,
  // so about 1,000 keys are active at any time.
  for (int i = 0; i < 100'000; ++i) {
    limiter.try_acquire(i, kStart + std::chrono::milliseconds(i));
    max_size = std::max(max_size, limiter.size());
  }

  EXPECT_LT(max_size, 3'000u) << "max keys stored: " << max_size;
}

TEST(KeyedGcra, EvictIdleRemovesOnlyIdleKeys) {
  KeyedGcra<int> limiter(1.0, 1);
  limiter.try_acquire(2, kStart + 5s);
  limiter.try_acquire(1, kStart);

  std::size_t removed = limiter.evict_idle(kStart + 2s);

  EXPECT_EQ(removed, 1u);
  EXPECT_EQ(limiter.size(), 1u);
  EXPECT_GT(limiter.time_until_available(2, kStart + 5s), 0ms);
}

TEST(KeyedGcra, PauseUntilBlocksOneKey) {
  KeyedGcra<int> limiter(1.0, 2);

  limiter.pause_until(7, kStart + 3s);

  EXPECT_FALSE(limiter.try_acquire(7, kStart + 1s));
  EXPECT_TRUE(limiter.try_acquire(8, kStart + 1s));
  EXPECT_TRUE(limiter.try_acquire(7, kStart + 3s));
}

}  // namespace
}  // namespace sluice::runtime
