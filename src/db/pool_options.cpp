#include <sluice/db/pool_options.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <sluice/db/errors.hpp>

#include "db/format_duration.hpp"

namespace sluice::db {
namespace {

// PostgreSQL keeps superuser_reserved_connections (default 3) for
// administrators; a pool must leave them free.
constexpr std::size_t kReservedConnections = 3;

}  // namespace

PoolOptions PoolOptions::null_pool() {
  PoolOptions options;
  options.pool_size = 0;
  options.max_overflow = -1;
  options.pool_pre_ping = false;
  options.idle_timeout = std::chrono::milliseconds{0};
  options.keepalive_interval = std::chrono::milliseconds{0};
  options.hold_warning_threshold = std::chrono::milliseconds{0};
  return options;
}

PoolOptions PoolOptions::sized_for(std::size_t cpu_count, std::size_t server_max_connections,
                                   std::size_t instances) {
  instances = std::max<std::size_t>(instances, 1);
  const std::size_t usable =
      server_max_connections > kReservedConnections ? server_max_connections - kReservedConnections : 1;
  const std::size_t share = std::max<std::size_t>(usable / instances, 1);

  PoolOptions options;
  options.pool_size = std::clamp<std::size_t>(2 * std::max<std::size_t>(cpu_count, 1), 1, share);
  options.max_overflow = static_cast<std::int32_t>(std::min(options.pool_size, share - options.pool_size));
  return options;
}

bool is_disconnect_sqlstate(std::string_view sqlstate) noexcept {
  if (sqlstate.size() != 5) {
    return false;
  }
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03";
}

bool SqlError::is_disconnect() const noexcept { return is_disconnect_sqlstate(sqlstate_); }

namespace detail {

std::string format_duration(std::chrono::nanoseconds value) {
  using namespace std::chrono;
  if (value >= seconds{1}) {
    if (value % seconds{1} == nanoseconds::zero()) {
      return fmt::format("{} s", duration_cast<seconds>(value).count());
    }
    return fmt::format("{:.3g} s", duration<double>(value).count());
  }
  if (value >= milliseconds{1}) {
    return fmt::format("{} ms", duration_cast<milliseconds>(value).count());
  }
  return fmt::format("{} us", duration_cast<microseconds>(value).count());
}

}  // namespace detail
}  // namespace sluice::db
