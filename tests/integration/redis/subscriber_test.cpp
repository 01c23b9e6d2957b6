#include <sluice/redis/subscriber.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include <sluice/redis/client.hpp>

#include "redis_test_support.hpp"

namespace sluice::redis {
namespace {

using namespace testing;

TEST(RedisSubscriber, DeliversMessagesInOrder) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions client_options;
    client_options.url = url;
    Client client(executor, client_options);
    SubscriberOptions options;
    options.url = url;
    Subscriber subscriber(executor, options);

    std::vector<std::string> channels{prefix + "news"};
    co_await subscriber.subscribe(std::move(channels));
    std::vector<std::string> patterns{prefix + "p.*"};
    co_await subscriber.psubscribe(std::move(patterns));

    constexpr int kMessages = 100;
    for (int i = 0; i < kMessages; ++i) {
      EXPECT_EQ(co_await client.publish(prefix + "news", "message " + std::to_string(i)), 1);
    }
    EXPECT_EQ(co_await client.publish(prefix + "p.x", "by pattern"), 1);

    int in_order = 0;
    for (int i = 0; i < kMessages; ++i) {
      Message message = co_await subscriber.next_message();
      if (message.channel == prefix + "news" && message.payload == "message " + std::to_string(i) &&
          message.pattern.empty()) {
        ++in_order;
      }
    }
    EXPECT_EQ(in_order, kMessages);
    std::optional<Message> matched = co_await subscriber.next_message(std::chrono::seconds(5));
    CO_ASSERT_TRUE(matched.has_value());
    EXPECT_EQ(matched->channel, prefix + "p.x");
    EXPECT_EQ(matched->pattern, prefix + "p.*");
    EXPECT_EQ(matched->payload, "by pattern");

    std::vector<std::string> leave{prefix + "news"};
    co_await subscriber.unsubscribe(std::move(leave));
    EXPECT_EQ(co_await client.publish(prefix + "news", "unheard"), 0);
    std::optional<Message> nothing = co_await subscriber.next_message(std::chrono::milliseconds(100));
    EXPECT_FALSE(nothing.has_value());

    SubscriberStats stats = subscriber.stats();
    EXPECT_EQ(stats.messages_received, static_cast<std::uint64_t>(kMessages + 1));
    EXPECT_EQ(stats.channels, 0u);
    EXPECT_EQ(stats.patterns, 1u);
    EXPECT_TRUE(stats.connected);
    co_await subscriber.close();
    co_await client.close();
  });
}

TEST(RedisSubscriber, ResubscribesAfterRestart) {
  SLUICE_REDIS_URL_OR_SKIP(shared_url);
  PrivateRedis server;
  ASSERT_EQ(server.error(), "");
  asio::io_context io;

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions client_options;
    client_options.url = server.url();
    Client client(executor, client_options);
    SubscriberOptions options;
    options.url = server.url();
    options.keepalive_interval = std::chrono::milliseconds(100);
    Subscriber subscriber(executor, options);
    std::vector<std::string> channels{"events"};
    co_await subscriber.subscribe(std::move(channels));

    // The restart blocks, so it runs on its own thread.
    std::atomic<bool> restarted{false};
    bool restart_ok = false;
    std::thread restarter([&] {
      restart_ok = server.restart();
      restarted = true;
    });
    auto is_restarted = [&] { return restarted.load(); };
    bool finished_restart = co_await eventually(is_restarted, std::chrono::seconds(30));
    restarter.join();
    CO_ASSERT_TRUE(finished_restart);
    CO_ASSERT_TRUE(restart_ok);

    // PUBLISH returns the number of receivers, which becomes 1 once the
    // subscriber is back.
    std::int64_t receivers = 0;
    for (int i = 0; i < 300 && receivers == 0; ++i) {
      try {
        receivers = co_await client.publish("events", "after restart");
      } catch (const Error&) {
      }
      if (receivers == 0) {
        asio::steady_timer timer(executor, std::chrono::milliseconds(10));
        co_await timer.async_wait(asio::use_awaitable);
      }
    }
    EXPECT_EQ(receivers, 1);
    std::optional<Message> message = co_await subscriber.next_message(std::chrono::seconds(5));
    CO_ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->payload, "after restart");
    EXPECT_GE(subscriber.stats().reconnects, 1u);
    co_await subscriber.close();
    co_await client.close();
  });
}

TEST(RedisSubscriber, CloseWakesWaitingReader) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    SubscriberOptions options;
    options.url = url;
    Subscriber subscriber(executor, options);

    Errc code{};
    bool woke = false;
    auto reader = [&]() -> asio::awaitable<void> {
      try {
        co_await subscriber.next_message();
      } catch (const Error& e) {
        code = e.errc();
      }
      woke = true;
    };
    asio::co_spawn(executor, reader, [](std::exception_ptr) {});
    co_await asio::post(executor, asio::use_awaitable);
    co_await subscriber.close();
    auto has_woken = [&] { return woke; };
    EXPECT_TRUE(co_await eventually(has_woken, std::chrono::seconds(5)));
    EXPECT_EQ(code, Errc::closed);
  });
}

}  // namespace
}  // namespace sluice::redis
