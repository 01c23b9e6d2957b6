#pragma once

#include <sys/types.h>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace sluice::redis::testing {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Upper bound for one test body, so that a broken test fails instead of
// hanging.
inline constexpr auto kMaxWait = std::chrono::seconds(180);

/// SLUICE_TEST_REDIS_URL, or empty when it is not set.
std::string shared_redis_url();
/// True when SLUICE_REQUIRE_SERVICES=1: a missing server is a failure.
bool services_required();
/// A key prefix unique to the running test and process, so that tests can
/// share one server with each other and with other test programs.
std::string key_prefix();

/// A loopback port that nothing listened on a moment ago.
int unused_port();

/// Thrown by CO_ASSERT_TRUE inside coroutines, where ASSERT_* (which
/// `return`) cannot be used.
class AssertionFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

#define CO_ASSERT_TRUE(condition)                                                              \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      throw ::sluice::redis::testing::AssertionFailed(std::string(__FILE__) + ":" +            \
                                                      std::to_string(__LINE__) +               \
                                                      ": assertion failed: " #condition);      \
    }                                                                                          \
  } while (false)

/// Declares `std::string var` with the shared server's URL; skips the test
/// (or fails it when services are required) if there is none.
#define SLUICE_REDIS_URL_OR_SKIP(var)                                                                  \
  std::string var = ::sluice::redis::testing::shared_redis_url();                                      \
  if (var.empty()) {                                                                                   \
    if (::sluice::redis::testing::services_required()) {                                               \
      FAIL() << "SLUICE_TEST_REDIS_URL is not set although SLUICE_REQUIRE_SERVICES=1";                 \
    }                                                                                                  \
    GTEST_SKIP() << "SLUICE_TEST_REDIS_URL is not set; run the tests under scripts/with-services.sh"; \
  }

/// Runs `body`, a function object returning awaitable<void>, on `io` until
/// it finishes; reports an escaping exception or a hang beyond kMaxWait as
/// a test failure. The function object is handed to co_spawn, which keeps
/// it alive while the coroutine runs.
template <typename Body>
void run_test(asio::io_context& io, Body body) {
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  Clock::time_point deadline = Clock::now() + kMaxWait;
  while (!done && Clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(100));
    if (io.stopped()) {
      io.restart();
    }
  }
  ASSERT_TRUE(done) << "the test body did not finish within " << kMaxWait.count() << " s";
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the test body threw: " << e.what();
    }
  }
}

/// Waits until `condition()` is true, checking every millisecond, for at
/// most `limit`; returns whether it became true. Pass a named function
/// object (g++ 12 destroys lambda temporaries in co_await expressions
/// twice).
template <typename Condition>
asio::awaitable<bool> eventually(Condition condition, Clock::duration limit) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  Clock::time_point deadline = Clock::now() + limit;
  while (!condition()) {
    if (Clock::now() >= deadline) {
      co_return false;
    }
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return true;
}

/// A redis-server of its own on a free port, for tests that restart or
/// pause the server. Started in the constructor; `error()` is non-empty
/// when that failed. The destructor resumes and stops it.
class PrivateRedis {
 public:
  PrivateRedis();
  ~PrivateRedis();
  PrivateRedis(const PrivateRedis&) = delete;
  PrivateRedis& operator=(const PrivateRedis&) = delete;

  const std::string& error() const noexcept { return error_; }
  int port() const noexcept { return port_; }
  std::string url() const;
  /// The server's process id, read from its pid file; 0 if unknown.
  pid_t pid() const;

  /// SHUTDOWN NOSAVE, then starts a new server on the same port; blocks
  /// until it answers PING. Returns false (with `error()`) on failure.
  bool restart();

 private:
  bool control(const std::string& action);

  std::string dir_;
  int port_ = 0;
  std::string error_;
};

/// Sends SIGSTOP to a process and SIGCONT when destroyed, whatever happens
/// in between.
class PauseGuard {
 public:
  explicit PauseGuard(pid_t pid);
  ~PauseGuard();
  PauseGuard(const PauseGuard&) = delete;
  PauseGuard& operator=(const PauseGuard&) = delete;
  bool paused() const noexcept { return paused_; }
  void resume();

 private:
  pid_t pid_;
  bool paused_ = false;
};

}  // namespace sluice::redis::testing
