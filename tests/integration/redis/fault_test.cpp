#include <sluice/redis/client.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <gtest/gtest.h>

#include "redis_test_support.hpp"

namespace sluice::redis {
namespace {

using namespace testing;

// One request of a load loop, as the caller saw it.
struct Attempt {
  Clock::time_point start;
  Clock::time_point end;
  bool ok = false;
  Errc code{};
};

asio::awaitable<void> pause_for(Clock::duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

// Runs INCR until `stop`, recording every attempt. After a failure it waits
// 1 ms, as a real caller would, so that failing fast cannot spin the loop.
asio::awaitable<void> incr_until_stopped(Client& client, std::string key, const bool& stop,
                                         std::vector<Attempt>& attempts, int& finished) {
  constexpr int kMaxIterations = 200000;
  for (int i = 0; i < kMaxIterations && !stop; ++i) {
    Attempt attempt;
    attempt.start = Clock::now();
    try {
      co_await client.incr(key);
      attempt.ok = true;
    } catch (const Error& e) {
      attempt.code = e.errc();
    }
    attempt.end = Clock::now();
    attempts.push_back(attempt);
    if (!attempt.ok) {
      co_await pause_for(std::chrono::milliseconds(1));
    }
  }
  ++finished;
}

TEST(RedisFaults, ServerRestartUnderLoad) {
  SLUICE_REDIS_URL_OR_SKIP(shared_url);
  PrivateRedis server;
  ASSERT_EQ(server.error(), "");
  asio::io_context io;
  constexpr int kWorkers = 64;

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions options;
    options.url = server.url();
    options.connections = 2;
    options.connect_timeout = std::chrono::seconds(2);
    options.command_timeout = std::chrono::seconds(2);
    options.keepalive_interval = std::chrono::milliseconds(200);
    options.reconnect_backoff_max = std::chrono::milliseconds(500);
    Client client(executor, options);
    co_await client.ping();
    auto all_up = [&] { return client.stats().connections_up == 2; };
    CO_ASSERT_TRUE(co_await eventually(all_up, std::chrono::seconds(5)));

    bool stop = false;
    int finished = 0;
    std::vector<std::vector<Attempt>> attempts(kWorkers);
    for (int w = 0; w < kWorkers; ++w) {
      asio::co_spawn(executor, incr_until_stopped(client, "counter", stop, attempts[w], finished),
                     [](std::exception_ptr) {});
    }
    auto warmed_up = [&] { return attempts[0].size() >= 50; };
    CO_ASSERT_TRUE(co_await eventually(warmed_up, std::chrono::seconds(10)));

    // The restart blocks, so it runs on its own thread while the loop keeps
    // serving the workers.
    std::atomic<bool> restarted{false};
    bool restart_ok = false;
    Clock::time_point back_at;
    std::thread restarter([&] {
      restart_ok = server.restart();
      back_at = Clock::now();
      restarted = true;
    });
    auto is_restarted = [&] { return restarted.load(); };
    bool finished_restart = co_await eventually(is_restarted, std::chrono::seconds(30));
    restarter.join();
    CO_ASSERT_TRUE(finished_restart);
    CO_ASSERT_TRUE(restart_ok);

    auto two_seconds_later = [&] { return Clock::now() >= back_at + std::chrono::seconds(2); };
    co_await eventually(two_seconds_later, std::chrono::seconds(5));
    stop = true;
    auto all_finished = [&] { return finished == kWorkers; };
    CO_ASSERT_TRUE(co_await eventually(all_finished, std::chrono::seconds(10)));

    std::size_t total = 0;
    std::size_t failures = 0;
    std::size_t unexpected_codes = 0;
    std::size_t late_failures = 0;
    std::size_t slow_after_back = 0;
    Clock::duration slowest_after_back{};
    for (const auto& worker : attempts) {
      for (const Attempt& attempt : worker) {
        ++total;
        if (!attempt.ok) {
          ++failures;
          if (attempt.code != Errc::connection_lost && attempt.code != Errc::not_connected &&
              attempt.code != Errc::timeout) {
            ++unexpected_codes;
          }
          if (attempt.start >= back_at + std::chrono::seconds(1)) {
            ++late_failures;
          }
        } else if (attempt.start >= back_at) {
          slowest_after_back = std::max(slowest_after_back, attempt.end - attempt.start);
          if (attempt.end - attempt.start >= std::chrono::seconds(1)) {
            ++slow_after_back;
          }
        }
      }
    }
    EXPECT_GT(total, 0u);
    EXPECT_EQ(unexpected_codes, 0u);
    EXPECT_EQ(late_failures, 0u) << "requests started 1 s after the server was back must succeed";
    EXPECT_EQ(slow_after_back, 0u) << "slowest successful request after the restart took "
                                   << std::chrono::duration_cast<std::chrono::milliseconds>(slowest_after_back).count()
                                   << " ms";

    // Nothing leaks: the gauges return to their idle values.
    auto idle = [&] {
      ClientStats stats = client.stats();
      return stats.in_flight == 0 && stats.queued == 0 && stats.waiting == 0 && stats.connections_up == 2;
    };
    EXPECT_TRUE(co_await eventually(idle, std::chrono::seconds(5)));
    ClientStats stats = client.stats();
    EXPECT_EQ(stats.in_flight, 0u);
    EXPECT_EQ(stats.queued, 0u);
    EXPECT_EQ(stats.waiting, 0u);
    EXPECT_EQ(stats.connections_up, 2u);
    EXPECT_GE(stats.reconnects, 2u);
    EXPECT_EQ(stats.connection_lost + stats.not_connected + stats.timeouts, failures);
    co_await client.close();
  });
}

TEST(RedisFaults, PausedServerHitsDeadline) {
  SLUICE_REDIS_URL_OR_SKIP(shared_url);
  PrivateRedis server;
  ASSERT_EQ(server.error(), "");
  asio::io_context io;

  run_test(io, [&]() -> asio::awaitable<void> {
    ClientOptions options;
    options.url = server.url();
    options.command_timeout = std::chrono::milliseconds(300);
    options.connect_timeout = std::chrono::milliseconds(500);
    options.keepalive_interval = std::chrono::milliseconds(100);
    options.keepalive_timeout = std::chrono::seconds(1);
    Client client(co_await asio::this_coro::executor, options);
    co_await client.ping();
    pid_t pid = server.pid();
    CO_ASSERT_TRUE(pid > 0);

    {
      PauseGuard pause(pid);
      CO_ASSERT_TRUE(pause.paused());

      Clock::time_point start = Clock::now();
      Errc code{};
      std::string message;
      try {
        co_await client.get("k");
      } catch (const Error& e) {
        code = e.errc();
        message = e.what();
      }
      auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      EXPECT_EQ(code, Errc::timeout) << message;
      EXPECT_GE(waited.count(), 295);
      EXPECT_LT(waited.count(), 300 + 250);
      EXPECT_NE(message.find("may have been executed"), std::string::npos) << message;

      start = Clock::now();
      Errc explicit_code{};
      try {
        co_await client.execute(Command("GET", "k"), std::chrono::milliseconds(100));
      } catch (const Error& e) {
        explicit_code = e.errc();
      }
      waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      EXPECT_EQ(explicit_code, Errc::timeout);
      EXPECT_GE(waited.count(), 95);
      EXPECT_LT(waited.count(), 100 + 250);

      // The health check declares the silent connection dead after
      // keepalive_timeout.
      auto dead = [&] { return client.stats().connections_up == 0; };
      EXPECT_TRUE(co_await eventually(dead, std::chrono::seconds(3)));
      pause.resume();
    }

    bool recovered = false;
    for (int i = 0; i < 500 && !recovered; ++i) {
      try {
        co_await client.ping();
        recovered = true;
      } catch (const Error&) {
      }
      if (!recovered) {
        co_await pause_for(std::chrono::milliseconds(10));
      }
    }
    EXPECT_TRUE(recovered);
    auto drained = [&] { return client.stats().in_flight == 0; };
    EXPECT_TRUE(co_await eventually(drained, std::chrono::seconds(5)));
    EXPECT_GE(client.stats().timeouts, 2u);
    co_await client.close();
  });
}

struct EchoTally {
  std::size_t matched = 0;
  std::size_t mismatched = 0;
  std::size_t cancelled = 0;
  std::size_t other_errors = 0;
  std::size_t finished = 0;
};

asio::awaitable<void> echo_once(Client& client, std::string payload, EchoTally& tally) {
  try {
    Reply reply = co_await client.command("ECHO", payload);
    if (reply == Reply::make_bulk_string(payload)) {
      ++tally.matched;
    } else {
      ++tally.mismatched;
    }
  } catch (const boost::system::system_error& e) {
    if (e.code() == asio::error::operation_aborted) {
      ++tally.cancelled;
    } else {
      ++tally.other_errors;
    }
  } catch (const std::exception&) {
    ++tally.other_errors;
  }
  ++tally.finished;
}

TEST(RedisFaults, RandomCancellationsKeepRepliesInStep) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  constexpr std::size_t kWave = 2000;
  constexpr std::size_t kCancellations = 100000;
  constexpr int kMaxTurns = 6;

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions options;
    options.url = url;
    options.connections = 2;
    Client client(executor, options);
    co_await client.ping();

    std::mt19937 random(12345);
    std::bernoulli_distribution cancel(0.75);
    std::uniform_int_distribution<int> turn(0, kMaxTurns - 1);
    EchoTally tally;
    std::size_t emitted = 0;
    std::size_t spawned = 0;

    while (emitted < kCancellations) {
      auto signals = std::make_unique<asio::cancellation_signal[]>(kWave);
      std::vector<int> cancel_turn(kWave, -1);
      for (std::size_t i = 0; i < kWave; ++i) {
        if (cancel(random)) {
          cancel_turn[i] = turn(random);
        }
        std::string payload = "echo-" + std::to_string(spawned++);
        asio::co_spawn(executor, echo_once(client, std::move(payload), tally),
                       asio::bind_cancellation_slot(signals[i].slot(), [](std::exception_ptr) {}));
      }
      // Cancel at different loop turns: before the request is queued, while
      // it waits for the writer, and while its reply is on the way.
      for (int t = 0; t < kMaxTurns; ++t) {
        for (std::size_t i = 0; i < kWave; ++i) {
          if (cancel_turn[i] == t) {
            signals[i].emit(asio::cancellation_type::terminal);
            ++emitted;
          }
        }
        co_await asio::post(executor, asio::use_awaitable);
      }
      auto wave_done = [&] { return tally.finished == spawned; };
      CO_ASSERT_TRUE(co_await eventually(wave_done, std::chrono::seconds(30)));
    }

    EXPECT_GE(emitted, kCancellations);
    EXPECT_EQ(tally.mismatched, 0u);
    EXPECT_EQ(tally.other_errors, 0u);
    EXPECT_GT(tally.cancelled, 0u);
    EXPECT_GT(tally.matched, 0u);
    EXPECT_EQ(tally.matched + tally.cancelled, spawned);

    auto drained = [&] {
      ClientStats stats = client.stats();
      return stats.in_flight == 0 && stats.queued == 0;
    };
    EXPECT_TRUE(co_await eventually(drained, std::chrono::seconds(10)));

    // Later requests still get their own replies.
    EchoTally after;
    for (std::size_t i = 0; i < 1000; ++i) {
      asio::co_spawn(executor, echo_once(client, "after-" + std::to_string(i), after), [](std::exception_ptr) {});
    }
    auto after_done = [&] { return after.finished == 1000; };
    EXPECT_TRUE(co_await eventually(after_done, std::chrono::seconds(30)));
    EXPECT_EQ(after.matched, 1000u);
    EXPECT_GT(client.stats().cancellations, 0u);
    co_await client.close();
  });
}

TEST(RedisFaults, BlockingCommandLeavesOthersFree) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions options;
    options.url = url;
    options.connections = 1;
    Client client(executor, options);
    std::string queue = prefix + "queue";

    bool popped = false;
    Reply popped_reply;
    auto pop = [&]() -> asio::awaitable<void> {
      popped_reply = co_await client.execute_blocking(Command("BLPOP", queue, 5), std::chrono::seconds(10));
      popped = true;
    };
    asio::co_spawn(executor, pop, [](std::exception_ptr) {});

    // Wait until the server is blocked in BLPOP.
    bool blocked = false;
    for (int i = 0; i < 500 && !blocked; ++i) {
      Reply clients = co_await client.command("CLIENT", "LIST");
      blocked = clients.as_string().find("cmd=blpop") != std::string::npos;
      if (!blocked) {
        co_await pause_for(std::chrono::milliseconds(5));
      }
    }
    CO_ASSERT_TRUE(blocked);

    Clock::time_point start = Clock::now();
    for (int i = 0; i < 200; ++i) {
      co_await client.get(prefix + "other");
    }
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    EXPECT_LT(elapsed.count(), 2000) << "GETs waited behind BLPOP";
    EXPECT_FALSE(popped);

    co_await client.command("LPUSH", queue, "item");
    auto is_popped = [&] { return popped; };
    EXPECT_TRUE(co_await eventually(is_popped, std::chrono::seconds(5)));
    std::vector<Reply> expected{Reply::make_bulk_string(queue), Reply::make_bulk_string("item")};
    EXPECT_EQ(popped_reply, Reply::make_array(expected));

    // The dedicated connection is reused, and a server-side timeout is nil.
    Reply empty = co_await client.execute_blocking(Command("BLPOP", queue, 0.05), std::chrono::seconds(5));
    EXPECT_TRUE(empty.is_nil());
    EXPECT_EQ(client.stats().blocking_connections, 1u);

    // A client deadline before the server's timeout closes the connection.
    Errc code{};
    try {
      co_await client.execute_blocking(Command("BLPOP", queue, 5), std::chrono::milliseconds(100));
    } catch (const Error& e) {
      code = e.errc();
    }
    EXPECT_EQ(code, Errc::timeout);
    EXPECT_EQ(client.stats().blocking_connections, 0u);
    co_await client.close();
  });
}

}  // namespace
}  // namespace sluice::redis
