#include <sluice/db/pool.hpp>

#include <random>

#include <sluice/runtime/logging.hpp>

#include "db/format_duration.hpp"

namespace sluice::db::detail {
namespace {

// Repeated warnings of one kind are logged at most this often; the rest
// are counted and the count is reported with the next one logged.
constexpr auto kWarningInterval = std::chrono::seconds{1};

struct RateLimit {
  Clock::time_point last{};
  std::uint64_t suppressed = 0;

  bool allow(Clock::time_point now) noexcept {
    if (last != Clock::time_point{} && now - last < kWarningInterval) {
      ++suppressed;
      return false;
    }
    last = now;
    return true;
  }
};

}  // namespace

const std::shared_ptr<spdlog::logger>& db_logger() {
  static const std::shared_ptr<spdlog::logger> logger = runtime::module_logger("sluice.db");
  return logger;
}

double jitter_uniform() noexcept {
  thread_local std::minstd_rand engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

void warn_second_acquire(const std::string& pool, const std::source_location& held,
                         const std::source_location& acquiring) {
  thread_local RateLimit limit;
  if (!limit.allow(Clock::now())) {
    return;
  }
  db_logger()->warn(
      "task acquires a second connection while holding one; if every task does this the pool deadlocks "
      "pool={} held_at={}:{} ({}) acquiring_at={}:{} ({}) suppressed={}",
      pool, held.file_name(), held.line(), held.function_name(), acquiring.file_name(), acquiring.line(),
      acquiring.function_name(), std::exchange(limit.suppressed, 0));
}

void warn_long_hold(const std::string& pool, std::chrono::nanoseconds held, const std::source_location& site,
                    Clock::time_point now) {
  thread_local RateLimit limit;
  if (!limit.allow(now)) {
    return;
  }
  db_logger()->warn(
      "connection held for {}; release it before awaiting anything but the database pool={} acquired_at={}:{} "
      "({}) suppressed={}",
      format_duration(held), pool, site.file_name(), site.line(), site.function_name(),
      std::exchange(limit.suppressed, 0));
}

}  // namespace sluice::db::detail
