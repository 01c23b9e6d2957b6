#pragma once

// Counts a test's server connections from pg_stat_activity.

#include <sluice/db/database.hpp>

#include <cstdint>
#include <string>

#include "unit/db/coro_test_support.hpp"

namespace sluice::db::testing {

/// Returns the number of server connections whose application_name is
/// `app`, queried through `observer`.
inline boost::asio::awaitable<std::int64_t> count_connections(Database& observer, std::string app) {
  auto rows = co_await observer.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app);
  co_return rows.at(0).get<std::int64_t>(0);
}

/// Polls the count until it equals `expected`, for up to 5 s, and returns the
/// last count. A backend leaves pg_stat_activity a moment after its client
/// closes the socket, so the count lags the client's view.
inline boost::asio::awaitable<std::int64_t> settled_connections(Database& observer, std::string app,
                                                                std::int64_t expected) {
  std::int64_t count = -1;
  for (int attempt = 0; attempt < 100; ++attempt) {
    count = co_await count_connections(observer, app);
    if (count == expected) {
      break;
    }
    co_await sleep_for(std::chrono::milliseconds{50});
  }
  co_return count;
}

}  // namespace sluice::db::testing
