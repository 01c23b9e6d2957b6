// RedisOffsetStore against the Redis server of scripts/with-services.sh.

#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <sluice/redis/client.hpp>
#include <sluice/updates/offset.hpp>

#include "../../unit/updates/offset_store_checks.hpp"

namespace {

namespace asio = boost::asio;
using sluice::updates::DeadLetter;
using sluice::updates::RedisOffsetStore;

constexpr std::chrono::seconds kMaxTestTime{30};

std::string redis_url() {
  const char* url = std::getenv("SLUICE_TEST_REDIS_URL");
  return url == nullptr ? "" : url;
}

bool services_required() {
  const char* required = std::getenv("SLUICE_REQUIRE_SERVICES");
  return required != nullptr && std::string(required) == "1";
}

// Returns a key prefix unique to this process, so that runs sharing the server never collide.
std::string test_prefix() { return "sluice-test:" + std::to_string(::getpid()) + ":updates"; }

// Runs `body` with a Redis client on a fresh io_context; fails the test on
// an exception or after kMaxTestTime.
void run_with_redis(const std::string& url,
                    std::function<asio::awaitable<void>(sluice::redis::Client&)> body) {
  asio::io_context io;
  sluice::redis::ClientOptions options;
  options.url = url;
  std::optional<sluice::redis::Client> client(std::in_place, io.get_executor(), options);
  // run_to_end stops the loop when the body ends; the client's connection
  // loops would otherwise keep it busy until the limit.
  sluice_test::run_to_end(io, body(*client), kMaxTestTime);
  client.reset();
  io.restart();
  io.run_for(std::chrono::seconds(1));
}

#define REDIS_URL_OR_SKIP(variable)                                         \
  const std::string variable = redis_url();                                 \
  if (variable.empty()) {                                                   \
    if (services_required()) {                                              \
      FAIL() << "SLUICE_TEST_REDIS_URL is not set; run under with-services"; \
    }                                                                       \
    GTEST_SKIP() << "SLUICE_TEST_REDIS_URL is not set";                     \
  }

TEST(RedisOffsetStore, OffsetSurvivesNewStore) {
  REDIS_URL_OR_SKIP(url);
  run_with_redis(url, [](sluice::redis::Client& client) -> asio::awaitable<void> {
    const std::string prefix = test_prefix() + ":restart";
    RedisOffsetStore first(client, "1001", prefix);
    const std::optional<std::int64_t> empty = co_await first.load();
    co_await first.save(500000123);
    RedisOffsetStore second(client, "1001", prefix);
    const std::optional<std::int64_t> loaded = co_await second.load();
    RedisOffsetStore other_bot(client, "1002", prefix);
    const std::optional<std::int64_t> other = co_await other_bot.load();
    co_await client.command("DEL", prefix + ":1001:offset");

    EXPECT_EQ(empty, std::nullopt);
    EXPECT_EQ(loaded, 500000123);
    EXPECT_EQ(other, std::nullopt);
  });
}

TEST(RedisOffsetStore, KeepsJournalContract) {
  REDIS_URL_OR_SKIP(url);
  run_with_redis(url, [](sluice::redis::Client& client) -> asio::awaitable<void> {
    const std::string prefix = test_prefix() + ":journal";
    RedisOffsetStore store(client, "1001", prefix);
    RedisOffsetStore other(client, "1002", prefix);
    co_await sluice_test::check_journal_contract(store, other);
    co_await client.command("DEL", prefix + ":1001:offset", prefix + ":1001:journal");
  });
}

TEST(RedisOffsetStore, DeadLettersKeepOrderAndFields) {
  REDIS_URL_OR_SKIP(url);
  run_with_redis(url, [](sluice::redis::Client& client) -> asio::awaitable<void> {
    const std::string prefix = test_prefix() + ":letters";
    RedisOffsetStore store(client, "1001", prefix);
    DeadLetter with_id{.update_id = 7, .raw_json = R"({"update_id":7,"message":1})", .error = "Update.message: expected object"};
    DeadLetter without_id{.update_id = std::nullopt, .raw_json = "[]", .error = "Update.update_id: missing"};
    co_await store.add_dead_letter(with_id);
    co_await store.add_dead_letter(without_id);
    const std::vector<DeadLetter> letters = co_await store.dead_letters();
    co_await client.command("DEL", prefix + ":1001:dead_letters");

    EXPECT_EQ(letters.size(), 2u);
    if (letters.size() != 2) {
      co_return;
    }
    EXPECT_EQ(letters[0].update_id, 7);
    EXPECT_EQ(letters[0].raw_json, with_id.raw_json);
    EXPECT_EQ(letters[0].error, with_id.error);
    EXPECT_EQ(letters[1].update_id, std::nullopt);
    EXPECT_EQ(letters[1].raw_json, "[]");
  });
}

TEST(RedisOffsetStore, CorruptOffsetNamesKey) {
  REDIS_URL_OR_SKIP(url);
  run_with_redis(url, [](sluice::redis::Client& client) -> asio::awaitable<void> {
    const std::string prefix = test_prefix() + ":corrupt";
    co_await client.command("SET", prefix + ":1001:offset", "12x");
    RedisOffsetStore store(client, "1001", prefix);
    std::string message;
    try {
      co_await store.load();
    } catch (const std::runtime_error& error) {
      message = error.what();
    }
    co_await client.command("DEL", prefix + ":1001:offset");

    EXPECT_NE(message.find(prefix + ":1001:offset"), std::string::npos) << message;
    EXPECT_NE(message.find("12x"), std::string::npos) << message;
  });
}

TEST(RedisOffsetStore, EmptyBotIdRejected) {
  asio::io_context io;
  sluice::redis::Client client(io.get_executor(), {});
  EXPECT_THROW(RedisOffsetStore(client, ""), std::invalid_argument);
}

}  // namespace
