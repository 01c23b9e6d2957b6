// Broadcast against the in-process sandbox: outcomes, migration, resume
// after an interrupted run, and the achieved rate under the paid limit.
#include <sluice/broadcast/broadcast.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <sluice/db/database.hpp>
#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/sandbox/sandbox.hpp>
#include <sluice/telegram/bot_api.hpp>

#include "support/run_on_loop.hpp"

namespace {

namespace asio = boost::asio;
using namespace sluice;
using namespace std::chrono_literals;

constexpr auto kMaxTestTime = 60s;
constexpr std::int64_t kFirstUserId = 700000001;
constexpr std::int64_t kOldGroup = -100000010;
constexpr std::int64_t kNewSupergroup = -1001000000010;

struct Harness {
  asio::io_context& context;
  runtime::BlockingPool& blocking;
};

// Runs `body` on a fresh io_context until it finishes; fails the test on an
// exception or after kMaxTestTime.
void run_test(std::function<asio::awaitable<void>(Harness)> body) {
  asio::io_context context;
  runtime::BlockingPool blocking(3, "test-blocking");
  sluice_test::run_to_end(context, body(Harness{context, blocking}), kMaxTestTime);
}

std::vector<std::int64_t> user_ids(std::size_t count) {
  std::vector<std::int64_t> ids;
  for (std::size_t i = 0; i < count; ++i) {
    ids.push_back(kFirstUserId + static_cast<std::int64_t>(i));
  }
  return ids;
}

// A sandbox whose users are `ids`; every id for which `blocked(id)` is
// true has blocked the bot.
sandbox::SandboxOptions sandbox_options(const std::vector<std::int64_t>& ids, bool flood_limits,
                                        const std::function<bool(std::int64_t)>& blocked) {
  sandbox::SandboxOptions options;
  sandbox::Scenario scenario;
  for (std::int64_t id : ids) {
    sandbox::User user;
    user.id = id;
    user.first_name = "User" + std::to_string(id);
    user.blocked_bot = blocked(id);
    scenario.users.push_back(user);
  }
  sandbox::FloodOptions flood;
  flood.enabled = flood_limits;
  scenario.flood = flood;
  options.scenario = scenario;
  return options;
}

telegram::BotApiOptions api_options(sandbox::Sandbox& server, bool flood_limits) {
  telegram::BotApiOptions options;
  options.token = server.engine().bot().token;
  options.base_url = server.base_url();
  options.flood.enabled = flood_limits;
  options.jitter_seed = 1;
  return options;
}

// sendMessage calls per chat id that the sandbox recorded, successful or not.
std::map<std::int64_t, int> send_counts(sandbox::Sandbox& server) {
  std::map<std::int64_t, int> counts;
  for (const boost::json::value& call : server.engine().calls_json("sendMessage", std::nullopt)) {
    counts[call.at("chat_id").to_number<std::int64_t>()] += 1;
  }
  return counts;
}

TEST(Broadcast, BlockedUsersCounted) {
  run_test([](Harness harness) -> asio::awaitable<void> {
    const std::vector<std::int64_t> ids = user_ids(20);
    auto every_fourth = [](std::int64_t id) { return (id - kFirstUserId) % 4 == 0; };
    sandbox::Sandbox server(harness.context.get_executor(), sandbox_options(ids, false, every_fourth));
    co_await server.start();
    {
      telegram::BotApi api(harness.context.get_executor(), api_options(server, false));
      broadcast::VectorRecipientSource source(ids);
      broadcast::MemoryCheckpointStore store;
      std::set<std::int64_t> blocked_seen;
      broadcast::BroadcastCallbacks callbacks;
      callbacks.on_blocked = [&blocked_seen](std::int64_t chat_id) -> asio::awaitable<void> {
        blocked_seen.insert(chat_id);
        co_return;
      };
      broadcast::Broadcast news(broadcast::make_text_sender(api, {.text = "Weekly news"}), source, store,
                                {.id = "blocked-test", .concurrency = 8}, std::move(callbacks));
      broadcast::Report report = co_await news.run();

      EXPECT_EQ(report.totals.delivered, 15u);
      EXPECT_EQ(report.totals.blocked, 5u);
      EXPECT_EQ(report.totals.failed, 0u);
      EXPECT_EQ(report.totals.pending, std::optional<std::uint64_t>(0));
      std::set<std::int64_t> expected_blocked;
      for (std::int64_t id : ids) {
        if (every_fourth(id)) {
          expected_blocked.insert(id);
        }
      }
      EXPECT_EQ(blocked_seen, expected_blocked);
      EXPECT_EQ(store.results("blocked-test").size(), ids.size());
    }
    co_await server.stop();
  });
}

TEST(Broadcast, MigrationFollowedOnce) {
  run_test([](Harness harness) -> asio::awaitable<void> {
    std::vector<std::int64_t> ids = user_ids(2);
    sandbox::SandboxOptions options = sandbox_options(ids, false, [](std::int64_t) { return false; });
    sandbox::Chat old_group;
    old_group.id = kOldGroup;
    old_group.type = sandbox::ChatType::group;
    old_group.title = "Old team";
    old_group.migrated_to_chat_id = kNewSupergroup;
    options.scenario->chats.push_back(old_group);
    sandbox::Sandbox server(harness.context.get_executor(), options);
    co_await server.start();
    {
      telegram::BotApi api(harness.context.get_executor(), api_options(server, false));
      ids.push_back(kOldGroup);
      broadcast::VectorRecipientSource source(ids);
      broadcast::MemoryCheckpointStore store;
      std::vector<std::pair<std::int64_t, std::int64_t>> migrations;
      broadcast::BroadcastCallbacks callbacks;
      callbacks.on_migrated = [&migrations](std::int64_t from, std::int64_t to) -> asio::awaitable<void> {
        migrations.emplace_back(from, to);
        co_return;
      };
      broadcast::Broadcast news(broadcast::make_text_sender(api, {.text = "Team news"}), source, store,
                                {.id = "migration-test"}, std::move(callbacks));
      broadcast::Report report = co_await news.run();

      EXPECT_EQ(report.totals.delivered, 3u);
      EXPECT_EQ(report.totals.migrated, 1u);
      EXPECT_EQ(report.totals.failed, 0u);
      EXPECT_EQ(migrations.size(), 1u);
      if (!migrations.empty()) {
        EXPECT_EQ(migrations[0].first, kOldGroup);
        EXPECT_EQ(migrations[0].second, kNewSupergroup);
      }
      std::map<std::int64_t, int> counts = send_counts(server);
      EXPECT_EQ(counts[kOldGroup], 1);
      EXPECT_EQ(counts[kNewSupergroup], 1);
      const auto new_calls = server.engine().calls_json("sendMessage", kNewSupergroup);
      EXPECT_EQ(new_calls.size(), 1u);
      if (!new_calls.empty()) {
        EXPECT_TRUE(new_calls[0].at("ok").as_bool());
      }
    }
    co_await server.stop();
  });
}

TEST(Broadcast, ResumeSendsNobodyTwice) {
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("sluice-broadcast-resume-" + std::to_string(::getpid()) + ".db");
  std::filesystem::remove(file);
  run_test([&file](Harness harness) -> asio::awaitable<void> {
    constexpr std::size_t kRecipients = 300;
    constexpr std::size_t kConcurrency = 16;
    constexpr int kSendsBeforeCrash = 120;
    const std::vector<std::int64_t> ids = user_ids(kRecipients);
    auto executor = harness.context.get_executor();
    sandbox::Sandbox server(executor, sandbox_options(ids, false, [](std::int64_t) { return false; }));
    co_await server.start();
    {
      db::DatabaseOptions database_options;
      database_options.sqlite.blocking_pool = &harness.blocking;
      db::Database database(executor, "sqlite:///" + file.string(), database_options);
      broadcast::SqlCheckpointStore store(database);
      co_await store.ensure_schema();
      telegram::BotApi api(executor, api_options(server, false));
      broadcast::VectorRecipientSource source(ids);
      const broadcast::BroadcastOptions options{.id = "resume-test", .concurrency = kConcurrency, .page_size = 50};

      // First run: stop it from outside after kSendsBeforeCrash sends, as a
      // crash would, with sends still in flight.
      asio::cancellation_signal crash;
      int sends = 0;
      broadcast::SendFunction text_sender = broadcast::make_text_sender(api, {.text = "Resumable"});
      broadcast::SendFunction counting_sender = [&](std::int64_t chat_id) {
        if (++sends == kSendsBeforeCrash) {
          asio::post(executor, [&crash] { crash.emit(asio::cancellation_type::terminal); });
        }
        return text_sender(chat_id);
      };
      broadcast::Broadcast first(counting_sender, source, store, options);
      auto first_run = asio::co_spawn(executor, first.run(),
                                      asio::bind_cancellation_slot(crash.slot(), asio::as_tuple(asio::use_awaitable)));
      auto [error, unused_report] = co_await std::move(first_run);
      EXPECT_TRUE(error != nullptr) << "the first run finished before it was interrupted";
      const broadcast::Progress after_crash = first.progress();
      EXPECT_GT(after_crash.done(), 0u);
      EXPECT_LT(after_crash.done(), kRecipients);

      // Second run with the same id: only the rest.
      broadcast::Broadcast second(text_sender, source, store, options);
      broadcast::Report report = co_await second.run();
      EXPECT_EQ(report.totals.delivered, kRecipients);
      // A record in flight at the interruption may still have committed.
      EXPECT_GE(report.totals.resumed, after_crash.done());
      EXPECT_LE(report.totals.resumed, after_crash.done() + kConcurrency);

      std::map<std::int64_t, int> counts = send_counts(server);
      int duplicates = 0;
      int missing = 0;
      for (std::int64_t id : ids) {
        if (counts[id] == 0) {
          ++missing;
        }
        if (counts[id] > 1) {
          duplicates += counts[id] - 1;
        }
      }
      EXPECT_EQ(missing, 0);
      // Only sends in flight at the interruption may repeat.
      EXPECT_LE(duplicates, static_cast<int>(kConcurrency));
      co_await database.close();
    }
    co_await server.stop();
  });
  std::filesystem::remove(file);
  std::filesystem::remove(file.string() + "-wal");
  std::filesystem::remove(file.string() + "-shm");
}

TEST(Broadcast, PaidRateStaysWithinLimit) {
  run_test([](Harness harness) -> asio::awaitable<void> {
    constexpr std::size_t kRecipients = 1500;
    const std::vector<std::int64_t> ids = user_ids(kRecipients);
    sandbox::Sandbox server(harness.context.get_executor(),
                            sandbox_options(ids, true, [](std::int64_t) { return false; }));
    co_await server.start();
    {
      telegram::BotApi api(harness.context.get_executor(), api_options(server, true));
      broadcast::VectorRecipientSource source(ids);
      broadcast::MemoryCheckpointStore store;
      std::vector<broadcast::Progress> reports;
      broadcast::BroadcastCallbacks callbacks;
      callbacks.on_progress = [&reports](broadcast::Progress progress) -> asio::awaitable<void> {
        reports.push_back(progress);
        co_return;
      };
      broadcast::Broadcast news(broadcast::make_text_sender(api, {.text = "Paid", .allow_paid_broadcast = true}),
                                source, store,
                                {.id = "rate-test", .concurrency = 64, .progress_interval = 300ms},
                                std::move(callbacks));
      broadcast::Report report = co_await news.run();

      EXPECT_EQ(report.totals.delivered, kRecipients);
      EXPECT_EQ(server.engine().stats().responses_429, 0u);
      // The sandbox's paid_broadcast limit is 1000 messages/s; the client
      // may start with a burst of 50.
      EXPECT_LE(report.rate, 1000.0 * 1.05);
      EXPECT_GT(report.rate, 100.0);
      EXPECT_FALSE(reports.empty());
      if (!reports.empty()) {
        EXPECT_LT(reports.front().done(), kRecipients);
        EXPECT_TRUE(reports.front().pending.has_value());
      }
    }
    co_await server.stop();
  });
}

TEST(Broadcast, UnorderedSourceStopsRun) {
  class ShuffledSource final : public broadcast::RecipientSource {
   public:
    asio::awaitable<std::vector<std::int64_t>> next_page(std::optional<std::int64_t>, std::size_t) override {
      co_return std::vector<std::int64_t>{3, 1, 2};
    }
  };
  run_test([](Harness) -> asio::awaitable<void> {
    ShuffledSource source;
    broadcast::MemoryCheckpointStore store;
    int sends = 0;
    broadcast::SendFunction count_send = [&sends](std::int64_t) -> asio::awaitable<void> {
      ++sends;
      co_return;
    };
    broadcast::Broadcast news(count_send, source, store, {.id = "unordered"});
    bool threw = false;
    try {
      co_await news.run();
    } catch (const std::runtime_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    EXPECT_EQ(sends, 0);
  });
}

}  // namespace
