#include <sluice/redis/client.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include "redis_test_support.hpp"

namespace sluice::redis {
namespace {

using namespace testing;

ClientOptions options_for(const std::string& url) {
  ClientOptions options;
  options.url = url;
  options.client_name = "sluice-test";
  return options;
}

TEST(RedisClient, GetSetIncrDel) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    Client client(co_await asio::this_coro::executor, options_for(url));
    std::string key = prefix + "k";
    std::string counter = prefix + "counter";

    EXPECT_TRUE(co_await client.set(key, "value"));
    EXPECT_EQ(co_await client.get(key), std::optional<std::string>("value"));
    EXPECT_EQ(co_await client.get(prefix + "missing"), std::nullopt);
    EXPECT_EQ(co_await client.incr(counter), 1);
    EXPECT_EQ(co_await client.incr(counter, 41), 42);
    EXPECT_EQ(co_await client.del(key), 1);
    EXPECT_EQ(co_await client.del(key), 0);

    Reply raw = co_await client.command("SET", key, 12.5, "PX", 60000);
    EXPECT_EQ(raw, Reply::make_simple_string("OK"));
    Reply value = co_await client.command("GET", key);
    EXPECT_EQ(value, Reply::make_bulk_string("12.5"));

    std::vector<std::string> keys{key, counter, prefix + "missing"};
    EXPECT_EQ(co_await client.del(keys), 2);
    co_await client.close();
  });
}

TEST(RedisClient, SetOptionsAndExpire) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    Client client(co_await asio::this_coro::executor, options_for(url));
    std::string key = prefix + "dedup";
    SetOptions once{.expire = std::chrono::seconds(60), .condition = SetCondition::if_not_exists};

    EXPECT_TRUE(co_await client.set(key, "first", once));
    EXPECT_FALSE(co_await client.set(key, "second", once));
    EXPECT_EQ(co_await client.get(key), std::optional<std::string>("first"));
    Reply ttl = co_await client.command("PTTL", key);
    EXPECT_GT(ttl.as_integer(), 50000);
    EXPECT_LE(ttl.as_integer(), 60000);

    SetOptions only_existing{.condition = SetCondition::if_exists, .keep_ttl = true};
    EXPECT_TRUE(co_await client.set(key, "third", only_existing));
    Reply kept = co_await client.command("PTTL", key);
    EXPECT_GT(kept.as_integer(), 50000);
    EXPECT_FALSE(co_await client.set(prefix + "absent", "x", only_existing));

    EXPECT_TRUE(co_await client.expire(key, std::chrono::milliseconds(1500)));
    Reply shorter = co_await client.command("PTTL", key);
    EXPECT_LE(shorter.as_integer(), 1500);
    EXPECT_FALSE(co_await client.expire(prefix + "absent", std::chrono::seconds(1)));

    EXPECT_EQ(co_await client.hset(prefix + "h", "field", "v1"), 1);
    EXPECT_EQ(co_await client.hset(prefix + "h", "field", "v2"), 0);
    EXPECT_EQ(co_await client.hget(prefix + "h", "field"), std::optional<std::string>("v2"));
    EXPECT_EQ(co_await client.hget(prefix + "h", "other"), std::nullopt);
    co_await client.del(prefix + "h");
    co_await client.del(key);
    co_await client.close();
  });
}

TEST(RedisClient, ErrorsAreTypedReplies) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    Client client(co_await asio::this_coro::executor, options_for(url));
    std::string key = prefix + "text";
    co_await client.set(key, "not a number");

    Reply not_integer = co_await client.command("INCR", key);
    EXPECT_EQ(not_integer.kind(), ReplyKind::error);
    EXPECT_EQ(not_integer.error_code(), "ERR");
    Reply wrong_type = co_await client.command("LPUSH", key, "x");
    EXPECT_EQ(wrong_type.kind(), ReplyKind::error);
    EXPECT_EQ(wrong_type.error_code(), "WRONGTYPE");
    Reply unknown = co_await client.command("NOSUCHCOMMAND", 1);
    EXPECT_TRUE(unknown.is_error());

    std::string caught;
    try {
      co_await client.incr(key);
    } catch (const ServerError& e) {
      caught = e.error_code();
    }
    EXPECT_EQ(caught, "ERR");

    // The connection stays in step after errors.
    EXPECT_EQ(co_await client.get(key), std::optional<std::string>("not a number"));
    ClientStats stats = client.stats();
    EXPECT_GE(stats.error_replies, 4u);
    co_await client.del(key);
    co_await client.close();
  });
}

TEST(RedisClient, RejectsConnectionStateCommands) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;

  run_test(io, [&]() -> asio::awaitable<void> {
    Client client(co_await asio::this_coro::executor, options_for(url));
    for (const char* name : {"MULTI", "subscribe", "BLPOP", "SELECT", "watch"}) {
      bool rejected = false;
      try {
        co_await client.command(name, "x");
      } catch (const std::invalid_argument&) {
        rejected = true;
      }
      EXPECT_TRUE(rejected) << name;
    }
    co_await client.close();
  });
}

TEST(RedisClient, PipelineOfTenThousand) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();
  constexpr int kCount = 10000;

  run_test(io, [&]() -> asio::awaitable<void> {
    Client client(co_await asio::this_coro::executor, options_for(url));
    std::vector<Command> writes;
    std::vector<Command> reads;
    for (int i = 0; i < kCount; ++i) {
      writes.emplace_back("SET", prefix + std::to_string(i), "value-" + std::to_string(i));
      reads.emplace_back("GET", prefix + std::to_string(i));
    }

    std::vector<Reply> written = co_await client.pipeline(std::move(writes));
    std::vector<Reply> values = co_await client.pipeline(std::move(reads));

    EXPECT_EQ(written.size(), static_cast<std::size_t>(kCount));
    CO_ASSERT_TRUE(values.size() == static_cast<std::size_t>(kCount));
    int wrong = 0;
    for (int i = 0; i < kCount; ++i) {
      if (!written[i].is_string() || values[i] != Reply::make_bulk_string("value-" + std::to_string(i))) {
        ++wrong;
      }
    }
    EXPECT_EQ(wrong, 0);

    std::vector<Command> cleanup;
    for (int i = 0; i < kCount; i += 1000) {
      Command del("DEL");
      for (int j = i; j < i + 1000; ++j) {
        del.arg(prefix + std::to_string(j));
      }
      cleanup.push_back(std::move(del));
    }
    std::vector<Reply> deleted = co_await client.pipeline(std::move(cleanup));
    std::int64_t total = 0;
    for (const Reply& reply : deleted) {
      total += reply.as_integer();
    }
    EXPECT_EQ(total, kCount);
    co_await client.close();
  });
}

asio::awaitable<void> increment_many(Client& client, std::string counter, std::string own_key, int rounds,
                                     int& mismatches) {
  for (int i = 1; i <= rounds; ++i) {
    co_await client.incr(counter);
    std::string value = std::to_string(i);
    co_await client.set(own_key, value);
    std::optional<std::string> read = co_await client.get(own_key);
    if (read != value) {
      ++mismatches;
    }
  }
}

TEST(RedisClient, SixtyFourConcurrentCoroutines) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();
  constexpr int kWorkers = 64;
  constexpr int kRounds = 200;

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions options = options_for(url);
    options.connections = 3;
    Client client(executor, options);
    int mismatches = 0;
    int finished = 0;
    int failed = 0;
    for (int w = 0; w < kWorkers; ++w) {
      asio::co_spawn(executor,
                     increment_many(client, prefix + "counter", prefix + "own:" + std::to_string(w), kRounds,
                                    mismatches),
                     [&](std::exception_ptr error) {
                       ++finished;
                       if (error) {
                         ++failed;
                       }
                     });
    }
    auto all_finished = [&] { return finished == kWorkers; };
    EXPECT_TRUE(co_await eventually(all_finished, std::chrono::seconds(60)));

    EXPECT_EQ(failed, 0);
    EXPECT_EQ(mismatches, 0);
    EXPECT_EQ(co_await client.get(prefix + "counter"), std::optional<std::string>(std::to_string(kWorkers * kRounds)));
    ClientStats stats = client.stats();
    EXPECT_EQ(stats.in_flight, 0u);
    EXPECT_EQ(stats.queued, 0u);
    EXPECT_GE(stats.commands_sent, static_cast<std::uint64_t>(kWorkers * kRounds * 3));

    co_await client.del(prefix + "counter");
    for (int w = 0; w < kWorkers; ++w) {
      co_await client.del(prefix + "own:" + std::to_string(w));
    }
    co_await client.close();
  });
}

asio::awaitable<void> record_increment(Client& client, std::string key, std::vector<std::int64_t>& results,
                                       std::size_t slot) {
  Reply reply = co_await client.command("INCR", key);
  results[slot] = reply.as_integer();
}

TEST(RedisClient, RepliesFollowCallOrderOnOneConnection) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();
  constexpr std::size_t kCalls = 2000;

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions options = options_for(url);
    options.connections = 1;
    Client client(executor, options);
    co_await client.ping();

    // Coroutines spawned in order issue their INCR in order; on one
    // connection the server runs them in that order.
    std::vector<std::int64_t> results(kCalls, 0);
    std::size_t finished = 0;
    for (std::size_t i = 0; i < kCalls; ++i) {
      asio::co_spawn(executor, record_increment(client, prefix + "seq", results, i),
                     [&](std::exception_ptr) { ++finished; });
    }
    auto all_finished = [&] { return finished == kCalls; };
    EXPECT_TRUE(co_await eventually(all_finished, std::chrono::seconds(30)));

    std::size_t out_of_order = 0;
    for (std::size_t i = 0; i < kCalls; ++i) {
      if (results[i] != static_cast<std::int64_t>(i + 1)) {
        ++out_of_order;
      }
    }
    EXPECT_EQ(out_of_order, 0u) << "first results: " << results[0] << ", " << results[1] << ", " << results[2];

    std::vector<Command> increments;
    for (int i = 0; i < 100; ++i) {
      increments.emplace_back("INCR", prefix + "seq");
    }
    std::vector<Reply> replies = co_await client.pipeline(std::move(increments));
    bool ascending = true;
    for (std::size_t i = 0; i < replies.size(); ++i) {
      ascending = ascending && replies[i].as_integer() == static_cast<std::int64_t>(kCalls + i + 1);
    }
    EXPECT_TRUE(ascending);
    co_await client.del(prefix + "seq");
    co_await client.close();
  });
}

asio::awaitable<void> write_pairs(Client& client, std::string a, std::string b, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    std::vector<Command> both;
    both.emplace_back("SET", a, i);
    both.emplace_back("SET", b, i);
    co_await client.transaction(std::move(both));
  }
}

asio::awaitable<void> read_pairs(Client& client, std::string a, std::string b, int rounds, int& torn) {
  for (int i = 0; i < rounds; ++i) {
    Reply pair = co_await client.command("MGET", a, b);
    const std::vector<Reply>& values = pair.as_array();
    if (values[0] != values[1]) {
      ++torn;
    }
  }
}

TEST(RedisClient, TransactionIsAtomic) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions options = options_for(url);
    options.connections = 4;
    Client client(executor, options);
    std::string a = prefix + "a";
    std::string b = prefix + "b";

    int torn = 0;
    int finished = 0;
    asio::co_spawn(executor, write_pairs(client, a, b, 2000), [&](std::exception_ptr) { ++finished; });
    for (int r = 0; r < 8; ++r) {
      asio::co_spawn(executor, read_pairs(client, a, b, 500, torn), [&](std::exception_ptr) { ++finished; });
    }
    auto all_finished = [&] { return finished == 9; };
    EXPECT_TRUE(co_await eventually(all_finished, std::chrono::seconds(60)));
    EXPECT_EQ(torn, 0);

    std::vector<Command> mixed;
    mixed.emplace_back("SET", a, "text");
    mixed.emplace_back("INCR", a);
    mixed.emplace_back("GET", a);
    std::vector<Reply> results = co_await client.transaction(std::move(mixed));
    CO_ASSERT_TRUE(results.size() == 3);
    EXPECT_EQ(results[0], Reply::make_simple_string("OK"));
    EXPECT_TRUE(results[1].is_error());
    EXPECT_EQ(results[2], Reply::make_bulk_string("text"));

    std::vector<Command> invalid;
    invalid.emplace_back("SET", a, "never");
    invalid.emplace_back("NOSUCHCOMMAND");
    std::string error_code;
    try {
      co_await client.transaction(std::move(invalid));
    } catch (const ServerError& e) {
      error_code = e.error_code();
    }
    EXPECT_EQ(error_code, "EXECABORT");
    EXPECT_EQ(co_await client.get(a), std::optional<std::string>("text"));

    co_await client.del(a);
    co_await client.del(b);
    co_await client.close();
  });
}

TEST(RedisClient, ScriptFallsBackOnNoscript) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    Client client(co_await asio::this_coro::executor, options_for(url));
    // A source unique to this run, so the server cannot have it cached.
    Script script("-- " + prefix + std::to_string(Clock::now().time_since_epoch().count()) +
                  "\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])");
    Reply exists_before = co_await client.command("SCRIPT", "EXISTS", script.sha1());
    EXPECT_EQ(exists_before.as_array().at(0).as_integer(), 0);

    Arguments keys(prefix + "n");
    Arguments args(5);
    std::uint64_t errors_before = client.stats().error_replies;
    Reply first = co_await client.eval(script, keys, args);
    std::uint64_t errors_after_first = client.stats().error_replies;
    Reply second = co_await client.eval(script, keys, args);

    EXPECT_EQ(first, Reply::make_integer(5));
    EXPECT_EQ(second, Reply::make_integer(10));
    EXPECT_EQ(errors_after_first - errors_before, 1u) << "the first call gets exactly one NOSCRIPT";
    EXPECT_EQ(client.stats().error_replies, errors_after_first) << "the second call runs EVALSHA directly";
    Reply exists_after = co_await client.command("SCRIPT", "EXISTS", script.sha1());
    EXPECT_EQ(exists_after.as_array().at(0).as_integer(), 1);

    Reply by_digest = co_await client.evalsha(script.sha1(), keys, args);
    EXPECT_EQ(by_digest, Reply::make_integer(15));
    Reply unknown = co_await client.evalsha("0000000000000000000000000000000000000000", keys, args);
    EXPECT_EQ(unknown.error_code(), "NOSCRIPT");

    Script failing("return redis.call('NOSUCHCOMMAND')");
    Arguments none;
    Reply failed = co_await client.eval(failing, none, none);
    EXPECT_TRUE(failed.is_error());
    co_await client.del(prefix + "n");
    co_await client.close();
  });
}

TEST(RedisClient, StreamsWithConsumerGroup) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    Client client(co_await asio::this_coro::executor, options_for(url));
    std::string stream = prefix + "updates";
    Reply created = co_await client.command("XGROUP", "CREATE", stream, "workers", "$", "MKSTREAM");
    EXPECT_EQ(created, Reply::make_simple_string("OK"));

    std::vector<std::pair<std::string, std::string>> fields{{"update_id", "1"}, {"body", "hello"}};
    std::string first_id = co_await client.xadd(stream, fields, 1000);
    fields[0].second = "2";
    std::string second_id = co_await client.xadd(stream, fields);
    EXPECT_FALSE(first_id.empty());
    EXPECT_NE(first_id, second_id);

    ReadGroupOptions read{.group = "workers", .consumer = "w1", .count = 10};
    std::vector<StreamEntry> entries = co_await client.xreadgroup(stream, read);
    CO_ASSERT_TRUE(entries.size() == 2);
    EXPECT_EQ(entries[0].id, first_id);
    EXPECT_EQ(entries[1].id, second_id);
    CO_ASSERT_TRUE(entries[0].fields.size() == 2);
    EXPECT_EQ(entries[0].fields[0], (std::pair<std::string, std::string>("update_id", "1")));
    EXPECT_EQ(entries[1].fields[1], (std::pair<std::string, std::string>("body", "hello")));

    std::vector<StreamEntry> none = co_await client.xreadgroup(stream, read);
    EXPECT_TRUE(none.empty());

    ReadGroupOptions blocking{.group = "workers", .consumer = "w1", .count = 10, .block = std::chrono::milliseconds(50)};
    std::vector<StreamEntry> waited = co_await client.xreadgroup(stream, blocking);
    EXPECT_TRUE(waited.empty());

    std::vector<std::string> ids{first_id, second_id};
    EXPECT_EQ(co_await client.xack(stream, "workers", ids), 2);
    EXPECT_EQ(co_await client.xack(stream, "workers", ids), 0);
    co_await client.del(stream);
    co_await client.close();
  });
}

TEST(RedisClient, KeepalivePingsWhenIdle) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;

  run_test(io, [&]() -> asio::awaitable<void> {
    ClientOptions options = options_for(url);
    options.keepalive_interval = std::chrono::milliseconds(20);
    Client client(co_await asio::this_coro::executor, options);
    co_await client.ping();

    auto pinged = [&] { return client.stats().keepalive_pings >= 3; };
    EXPECT_TRUE(co_await eventually(pinged, std::chrono::seconds(5)));
    ClientStats stats = client.stats();
    EXPECT_EQ(stats.connections_up, 1u);
    EXPECT_GE(stats.replies_received, stats.keepalive_pings);
    co_await client.close();
  });
}

asio::awaitable<void> get_until_done(Client& client, std::string key, int rounds, int& done) {
  for (int i = 0; i < rounds; ++i) {
    co_await client.get(key);
  }
  ++done;
}

TEST(RedisClient, BackpressureWaitsForCapacity) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ClientOptions options = options_for(url);
    options.max_pending = 4;
    Client client(executor, options);
    co_await client.ping();

    int done = 0;
    std::size_t most_waiting = 0;
    for (int w = 0; w < 50; ++w) {
      asio::co_spawn(executor, get_until_done(client, prefix + "k", 20, done), [](std::exception_ptr) {});
    }
    auto finished = [&] {
      most_waiting = std::max(most_waiting, client.stats().waiting);
      return done == 50;
    };
    EXPECT_TRUE(co_await eventually(finished, std::chrono::seconds(30)));
    EXPECT_GT(most_waiting, 0u);
    EXPECT_EQ(client.stats().waiting, 0u);
    EXPECT_EQ(client.stats().timeouts, 0u);
    co_await client.close();
  });
}

TEST(RedisClient, CloseDrainsThenRejects) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Client client(executor, options_for(url));
    co_await client.ping();

    int done = 0;
    for (int w = 0; w < 20; ++w) {
      asio::co_spawn(executor, get_until_done(client, prefix + "k", 1, done), [](std::exception_ptr) {});
    }
    // Let the spawned coroutines queue their GETs.
    auto queued = [&] { return client.stats().in_flight + client.stats().queued > 0 || done == 20; };
    co_await eventually(queued, std::chrono::seconds(5));
    co_await client.close(std::chrono::seconds(5));
    EXPECT_EQ(done, 20);

    Errc code{};
    try {
      co_await client.get(prefix + "k");
    } catch (const Error& e) {
      code = e.errc();
    }
    EXPECT_EQ(code, Errc::closed);
    co_await client.close();
  });
}

TEST(RedisClient, UnreachableServerFailsFast) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string closed_url = "redis://127.0.0.1:" + std::to_string(unused_port());

  run_test(io, [&]() -> asio::awaitable<void> {
    ClientOptions options = options_for(closed_url);
    options.connect_timeout = std::chrono::milliseconds(300);
    Client client(co_await asio::this_coro::executor, options);

    Clock::time_point start = Clock::now();
    Errc first_code{};
    std::string first_message;
    try {
      co_await client.ping();
    } catch (const Error& e) {
      first_code = e.errc();
      first_message = e.what();
    }
    Clock::duration first_wait = Clock::now() - start;

    start = Clock::now();
    Errc second_code{};
    try {
      co_await client.ping();
    } catch (const Error& e) {
      second_code = e.errc();
    }
    Clock::duration second_wait = Clock::now() - start;

    EXPECT_EQ(first_code, Errc::not_connected);
    EXPECT_NE(first_message.find("refused"), std::string::npos) << first_message;
    EXPECT_LT(first_wait, std::chrono::milliseconds(1000));
    EXPECT_EQ(second_code, Errc::not_connected);
    EXPECT_LT(second_wait, std::chrono::milliseconds(50)) << "after connect_timeout requests fail at once";
    EXPECT_GT(client.stats().connect_failures, 0u);
    co_await client.close();
  });
}

TEST(RedisClient, AuthErrorHidesPassword) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  // The test server has no password, so AUTH fails in the handshake.
  std::string with_password = "redis://:sup3r-secret@" + url.substr(std::string("redis://").size());

  run_test(io, [&]() -> asio::awaitable<void> {
    ClientOptions options = options_for(with_password);
    options.connect_timeout = std::chrono::milliseconds(300);
    Client client(co_await asio::this_coro::executor, options);

    std::string message;
    Errc code{};
    try {
      co_await client.ping();
    } catch (const Error& e) {
      code = e.errc();
      message = e.what();
    }
    EXPECT_EQ(code, Errc::not_connected);
    EXPECT_NE(message.find("AUTH"), std::string::npos) << message;
    EXPECT_EQ(message.find("sup3r-secret"), std::string::npos) << message;
    co_await client.close();
  });
}

TEST(RedisClient, SelectsDatabaseFromUrl) {
  SLUICE_REDIS_URL_OR_SKIP(url);
  asio::io_context io;
  std::string prefix = key_prefix();

  run_test(io, [&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Client db0(executor, options_for(url));
    Client db5(executor, options_for(url + "/5"));
    co_await db5.set(prefix + "k", "in five");

    EXPECT_EQ(co_await db5.get(prefix + "k"), std::optional<std::string>("in five"));
    EXPECT_EQ(co_await db0.get(prefix + "k"), std::nullopt);
    Reply name = co_await db0.command("CLIENT", "GETNAME");
    EXPECT_EQ(name, Reply::make_bulk_string("sluice-test"));
    co_await db5.del(prefix + "k");
    co_await db0.close();
    co_await db5.close();
  });
}

}  // namespace
}  // namespace sluice::redis
