#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace sluice::db {

/// A fixed-bucket latency histogram (upper bounds from 50 us to 10 s, plus
/// an overflow bucket). Recording is a few comparisons and no allocation.
struct DurationHistogram {
  static constexpr std::array<std::chrono::microseconds, 16> kBounds{
      std::chrono::microseconds{50},        std::chrono::microseconds{100},
      std::chrono::microseconds{250},       std::chrono::microseconds{500},
      std::chrono::microseconds{1'000},     std::chrono::microseconds{2'500},
      std::chrono::microseconds{5'000},     std::chrono::microseconds{10'000},
      std::chrono::microseconds{25'000},    std::chrono::microseconds{50'000},
      std::chrono::microseconds{100'000},   std::chrono::microseconds{250'000},
      std::chrono::microseconds{500'000},   std::chrono::microseconds{1'000'000},
      std::chrono::microseconds{2'500'000}, std::chrono::microseconds{10'000'000}};

  /// counts[i] counts values <= kBounds[i] (and > kBounds[i - 1]); the last
  /// element counts values above every bound.
  std::array<std::uint64_t, kBounds.size() + 1> counts{};
  std::uint64_t count = 0;
  std::chrono::nanoseconds sum{0};

  void record(std::chrono::nanoseconds value) noexcept {
    std::size_t bucket = 0;
    while (bucket < kBounds.size() && value > kBounds[bucket]) {
      ++bucket;
    }
    ++counts[bucket];
    ++count;
    sum += value;
  }
};

/// A snapshot of a pool's gauges, counters and histograms.
struct PoolStats {
  // Gauges.
  std::size_t pool_size = 0;       ///< configured pool_size
  std::size_t open = 0;            ///< connections open: idle + in_use + cleaning
  std::size_t idle = 0;
  std::size_t in_use = 0;          ///< handed out (including a checkout's pre-ping)
  std::size_t cleaning = 0;        ///< returned dirty, being cancelled/rolled back
  std::size_t connecting = 0;
  std::size_t waiters = 0;
  std::size_t overflow = 0;        ///< open connections above pool_size
  std::size_t background_tasks = 0;

  // Counters since the pool was created.
  std::uint64_t acquired = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t rejected_exhausted = 0;
  std::uint64_t rejected_connect_failing = 0;
  std::uint64_t connects = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t closed = 0;
  std::uint64_t recycled = 0;
  std::uint64_t invalidated = 0;   ///< closed because a failure invalidated them
  std::uint64_t pings = 0;
  std::uint64_t ping_failures = 0;
  std::uint64_t cleanups = 0;
  std::uint64_t cleanup_failures = 0;
  std::uint64_t hold_warnings = 0;

  DurationHistogram wait_time;     ///< acquire() from call to hand-out
  DurationHistogram hold_time;     ///< hand-out to return
  DurationHistogram connect_time;  ///< successful connects
};

}  // namespace sluice::db
