#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <sluice/redis/error.hpp>

namespace sluice::redis::detail {

// These helpers use make_parallel_group with wait_for_one(), which ends the
// race at the first completion, failure included. The awaitable operator
// `||` waits for the first *success* instead, so a failed socket operation
// would not end it.

// Runs `operation` until `deadline`. When the deadline passes first, the
// operation is cancelled and awaited, and Error(Errc::timeout) is thrown
// with "<what> timed out after <n> ms". An operation that ignores
// cancellation (a DNS lookup in progress) delays the throw until it ends.
template <typename T>
boost::asio::awaitable<T> with_deadline(boost::asio::awaitable<T> operation,
                                        std::chrono::steady_clock::time_point deadline, std::string what) {
  namespace asio = boost::asio;
  auto started = std::chrono::steady_clock::now();
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, deadline);
  auto throw_timeout = [&] {
    auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    throw Error(Errc::timeout, what + " timed out after " + std::to_string(waited.count()) + " ms");
  };

  if constexpr (std::is_void_v<T>) {
    auto [order, error, timer_error] =
        co_await asio::experimental::make_parallel_group(asio::co_spawn(executor, std::move(operation), asio::deferred),
                                                         timer.async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::deferred);
    if (order[0] == 1 && !timer_error) {
      throw_timeout();
    }
    if (error) {
      std::rethrow_exception(error);
    }
  } else {
    auto [order, error, value, timer_error] =
        co_await asio::experimental::make_parallel_group(asio::co_spawn(executor, std::move(operation), asio::deferred),
                                                         timer.async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::deferred);
    if (order[0] == 1 && !timer_error) {
      throw_timeout();
    }
    if (error) {
      std::rethrow_exception(error);
    }
    co_return std::move(value);
  }
}

// Runs the three loops together until the first one ends (they only end by
// throwing), cancels and awaits the other two, and rethrows the first
// exception.
inline boost::asio::awaitable<void> run_until_first_exits(boost::asio::awaitable<void> first,
                                                           boost::asio::awaitable<void> second,
                                                           boost::asio::awaitable<void> third) {
  namespace asio = boost::asio;
  auto executor = co_await asio::this_coro::executor;
  auto [order, first_error, second_error, third_error] =
      co_await asio::experimental::make_parallel_group(asio::co_spawn(executor, std::move(first), asio::deferred),
                                                       asio::co_spawn(executor, std::move(second), asio::deferred),
                                                       asio::co_spawn(executor, std::move(third), asio::deferred))
          .async_wait(asio::experimental::wait_for_one(), asio::deferred);
  std::exception_ptr errors[] = {first_error, second_error, third_error};
  if (std::exception_ptr error = errors[order[0]]) {
    std::rethrow_exception(error);
  }
}

}  // namespace sluice::redis::detail
