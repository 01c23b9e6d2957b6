#pragma once

// Runs a test's coroutine body on an io_context, for the test programs of
// every module.

#include <chrono>
#include <exception>
#include <functional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice_test {

/// Runs `task` on `context` until it finishes, then stops the context.
/// Fails the test when the task throws or is still running after `limit`.
inline void run_to_end(boost::asio::io_context& context, boost::asio::awaitable<void> task,
                       std::chrono::seconds limit) {
  std::exception_ptr failure;
  bool finished = false;
  auto on_done = [&](std::exception_ptr error) {
    failure = error;
    finished = true;
    context.stop();
  };
  boost::asio::co_spawn(context, std::move(task), on_done);
  context.run_for(limit);
  ASSERT_TRUE(finished) << "test did not finish within " << limit.count() << " s";
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      FAIL() << "test threw: " << error.what();
    }
  }
}

/// Runs `body` on a fresh io_context, as run_to_end does.
inline void run_on_loop(std::chrono::seconds limit,
                        const std::function<boost::asio::awaitable<void>(boost::asio::io_context&)>& body) {
  boost::asio::io_context context;
  run_to_end(context, body(context), limit);
}

}  // namespace sluice_test
