// The update queue of the sandbox engine: getUpdates offsets and conflicts,
// long polls, and webhook scheduling with retries and per-chat order.

#include <sluice/sandbox/engine.hpp>

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.hpp"

namespace sluice::sandbox {
namespace {

using testing::expect_same_shape;
using testing::Harness;
using testing::load_data;
using namespace std::chrono_literals;

constexpr std::int64_t kAlice = 100000001;
constexpr std::int64_t kBob = 100000002;

class EngineUpdates : public ::testing::Test {
 protected:
  EngineUpdates() {
    harness.add_user(kAlice, "Alice");
    harness.add_user(kBob, "Bob");
  }

  void push_messages(std::int64_t user, int count) {
    for (int i = 0; i < count; ++i) {
      harness.engine().push_user_message(user, 0, "m" + std::to_string(i), harness.now());
    }
  }

  std::vector<std::int64_t> update_ids(testing::Parsed const& reply) {
    std::vector<std::int64_t> ids;
    for (auto const& update : reply.result().as_array()) {
      ids.push_back(update.at("update_id").as_int64());
    }
    return ids;
  }

  Harness harness;
};

TEST_F(EngineUpdates, GetUpdatesReturnsQueuedInOrder) {
  push_messages(kAlice, 3);
  auto reply = harness.call("getUpdates");
  ASSERT_TRUE(reply.ok()) << reply.body;
  EXPECT_EQ(update_ids(reply), (std::vector<std::int64_t>{500, 501, 502}));
  auto const& message = reply.result().at(0).at("message");
  EXPECT_EQ(message.at("text").as_string(), "m0");
  expect_same_shape(reply.body, load_data("responses/getupdates_result_01.json"));
}

TEST_F(EngineUpdates, EmptyQueueMatchesRecordedShape) {
  auto reply = harness.call("getUpdates");
  EXPECT_EQ(reply.body, load_data("responses/getupdates_empty_01.json"));
}

TEST_F(EngineUpdates, CommandMessageHasEntity) {
  harness.engine().push_user_message(kAlice, 0, "/start", harness.now());
  auto reply = harness.call("getUpdates");
  auto const& message = reply.result().at(0).at("message");
  auto recorded = load_data("updates/message_command_01.json");
  expect_same_shape(reply.result().at(0), recorded);
  EXPECT_EQ(message.at("entities").at(0).at("type").as_string(), "bot_command");
  EXPECT_EQ(message.at("entities").at(0).at("length").as_int64(), 6);
}

TEST_F(EngineUpdates, OffsetConfirmsLowerUpdates) {
  push_messages(kAlice, 5);
  auto reply = harness.call("getUpdates", {{"offset", 503}});
  EXPECT_EQ(update_ids(reply), (std::vector<std::int64_t>{503, 504}));
  EXPECT_EQ(harness.engine().stats().updates_confirmed, 3u);
  auto again = harness.call("getUpdates", {{"offset", "503"}});
  EXPECT_EQ(update_ids(again), (std::vector<std::int64_t>{503, 504})) << "unconfirmed updates come again";
  auto past_end = harness.call("getUpdates", {{"offset", 1000}});
  EXPECT_TRUE(past_end.result().as_array().empty());
  EXPECT_EQ(harness.engine().pending_updates(), 0u);
}

TEST_F(EngineUpdates, NegativeOffsetKeepsLastUpdates) {
  push_messages(kAlice, 5);
  auto reply = harness.call("getUpdates", {{"offset", -2}});
  EXPECT_EQ(update_ids(reply), (std::vector<std::int64_t>{503, 504}));
  EXPECT_EQ(harness.engine().stats().updates_dropped, 3u);
}

TEST_F(EngineUpdates, LimitIsClamped) {
  push_messages(kAlice, 120);
  EXPECT_EQ(harness.call("getUpdates", {{"limit", 2}}).result().as_array().size(), 2u);
  EXPECT_EQ(harness.call("getUpdates", {{"limit", 0}}).result().as_array().size(), 1u);
  EXPECT_EQ(harness.call("getUpdates", {{"limit", 1000}}).result().as_array().size(), 100u);
  EXPECT_EQ(harness.call("getUpdates").result().as_array().size(), 100u);
}

TEST_F(EngineUpdates, LongPollWaitsThenResumes) {
  auto outcome = harness.start("getUpdates", {{"timeout", 30}});
  ASSERT_TRUE(std::holds_alternative<PollWait>(outcome));
  auto wait = std::get<PollWait>(outcome);
  EXPECT_EQ(wait.deadline, harness.now() + 30s);
  auto still = harness.engine().resume_poll(wait.ticket, harness.now());
  EXPECT_TRUE(std::holds_alternative<PollWait>(still));
  harness.engine().push_user_message(kAlice, 0, "hello", harness.now());
  auto done = harness.engine().resume_poll(wait.ticket, harness.now());
  ASSERT_TRUE(std::holds_alternative<ApiReply>(done));
  auto reply = testing::parse_reply(std::get<ApiReply>(done));
  EXPECT_EQ(reply.result().as_array().size(), 1u);
}

TEST_F(EngineUpdates, LongPollTimesOutEmpty) {
  auto outcome = harness.start("getUpdates", {{"timeout", 100}});
  auto wait = std::get<PollWait>(outcome);
  EXPECT_EQ(wait.deadline, harness.now() + 50s) << "Telegram caps the timeout at 50 s";
  harness.advance(50s);
  auto done = harness.engine().resume_poll(wait.ticket, harness.now());
  ASSERT_TRUE(std::holds_alternative<ApiReply>(done));
  EXPECT_EQ(std::get<ApiReply>(done).body, R"({"ok":true,"result":[]})");
}

TEST_F(EngineUpdates, SecondPollerEndsFirstWithConflict) {
  auto first = std::get<PollWait>(harness.start("getUpdates", {{"timeout", 30}}));
  auto second = harness.start("getUpdates", {{"timeout", 30}});
  ASSERT_TRUE(std::holds_alternative<PollWait>(second));
  auto ended = harness.engine().resume_poll(first.ticket, harness.now());
  ASSERT_TRUE(std::holds_alternative<ApiReply>(ended));
  auto reply = testing::parse_reply(std::get<ApiReply>(ended));
  EXPECT_EQ(reply.status, 409u);
  EXPECT_EQ(reply.body, load_data("responses/error_409_conflict_getupdates_01.json"));
  auto still = harness.engine().resume_poll(std::get<PollWait>(second).ticket, harness.now());
  EXPECT_TRUE(std::holds_alternative<PollWait>(still)) << "the newer poll keeps waiting";

  // The first poll was recorded as ok when it began. Its record now has 409.
  auto calls = harness.engine().calls_json("getUpdates", std::nullopt);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("ok"), false);
  EXPECT_EQ(calls[0].at("error_code"), 409);
  EXPECT_EQ(calls[1].at("ok"), true);
  EXPECT_EQ(harness.engine().stats().errors_by_code.at(409), 1u);
}

TEST_F(EngineUpdates, GetUpdatesConflictsWithWebhook) {
  ASSERT_TRUE(harness.call("setWebhook", {{"url", "http://127.0.0.1:9/hook"}}).ok());
  auto reply = harness.call("getUpdates");
  EXPECT_EQ(reply.status, 409u);
  EXPECT_EQ(reply.body, load_data("responses/error_409_webhook_active_01.json"));
}

TEST_F(EngineUpdates, WebhookSetEndsWaitingPoll) {
  auto wait = std::get<PollWait>(harness.start("getUpdates", {{"timeout", 30}}));
  ASSERT_TRUE(harness.call("setWebhook", {{"url", "http://127.0.0.1:9/hook"}}).ok());
  auto ended = harness.engine().resume_poll(wait.ticket, harness.now());
  ASSERT_TRUE(std::holds_alternative<ApiReply>(ended));
  EXPECT_EQ(std::get<ApiReply>(ended).status, 409u);
}

TEST_F(EngineUpdates, AllowedUpdatesFilterKinds) {
  harness.call("getUpdates", {{"allowed_updates", R"(["callback_query"])"}});
  harness.engine().push_user_message(kAlice, 0, "ignored", harness.now());
  EXPECT_EQ(harness.engine().pending_updates(), 0u);
  EXPECT_EQ(harness.engine().stats().updates_filtered, 1u);
  harness.call("getUpdates", {{"allowed_updates", boost::json::array{}}});
  harness.engine().push_user_message(kAlice, 0, "kept", harness.now());
  EXPECT_EQ(harness.engine().pending_updates(), 1u);
}

TEST_F(EngineUpdates, DefaultAllowedUpdatesSkipOptInKinds) {
  auto update = load_data("updates/message_reaction_01.json").as_object();
  EXPECT_FALSE(harness.engine().push_update(update, harness.now()).has_value());
  auto unknown = load_data("updates/unknown_update_kind_02.json").as_object();
  EXPECT_TRUE(harness.engine().push_update(unknown, harness.now()).has_value())
      << "kinds the Bot API does not list pass through";
}

TEST_F(EngineUpdates, WebhookInfoReportsState) {
  push_messages(kAlice, 2);
  auto idle = harness.call("getWebhookInfo");
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle.result().at("url").as_string(), "");
  EXPECT_EQ(idle.result().at("pending_update_count").as_int64(), 2);
  expect_same_shape(idle.body, load_data("responses/ok_get_webhook_info_01.json"));

  auto set = harness.call("setWebhook", {{"url", "https://bot.example/hook"},
                                         {"secret_token", "s3cret_-"},
                                         {"max_connections", 2},
                                         {"allowed_updates", R"(["message"])"}});
  EXPECT_EQ(set.description(), "Webhook was set");
  EXPECT_EQ(harness.call("setWebhook", {{"url", "https://bot.example/hook"}, {"secret_token", "s3cret_-"},
                                        {"max_connections", 2}})
                .description(),
            "Webhook is already set");
  auto info = harness.call("getWebhookInfo");
  EXPECT_EQ(info.result().at("url").as_string(), "https://bot.example/hook");
  EXPECT_EQ(info.result().at("max_connections").as_int64(), 2);
  EXPECT_EQ(info.result().at("allowed_updates").at(0).as_string(), "message");
  expect_same_shape(info.body, load_data("responses/ok_get_webhook_info_01.json"));

  auto deleted = harness.call("deleteWebhook", {{"drop_pending_updates", true}});
  EXPECT_EQ(deleted.description(), "Webhook was deleted");
  EXPECT_EQ(harness.engine().pending_updates(), 0u);
  EXPECT_EQ(harness.call("deleteWebhook").description(), "Webhook is already deleted");
}

TEST_F(EngineUpdates, SetWebhookValidates) {
  EXPECT_EQ(harness.call("setWebhook", {{"url", "ftp://x"}}).description(),
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook");
  EXPECT_EQ(harness.call("setWebhook", {{"url", "https://x/y"}, {"secret_token", "has space"}}).description(),
            "Bad Request: secret token contains unallowed characters");
  harness.engine().apply_config(
      boost::json::object{{"webhook", boost::json::object{{"require_https", true}}}});
  EXPECT_EQ(harness.call("setWebhook", {{"url", "http://bot.example/hook"}}).description(),
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook");
  EXPECT_EQ(harness.call("setWebhook", {{"url", "https://bot.example:9000/hook"}}).description(),
            "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443");
  EXPECT_TRUE(harness.call("setWebhook", {{"url", "https://bot.example:8443/hook"}}).ok());
}

TEST_F(EngineUpdates, WebhookDeliversOnePerChatInOrder) {
  ASSERT_TRUE(harness.call("setWebhook", {{"url", "http://127.0.0.1:9/hook"}, {"secret_token", "abc"}}).ok());
  push_messages(kAlice, 3);
  push_messages(kBob, 2);
  auto& engine = harness.engine();

  auto first = engine.next_webhook_delivery(harness.now());
  auto second = engine.next_webhook_delivery(harness.now());
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(engine.next_webhook_delivery(harness.now()).has_value()) << "each chat has one update in flight";
  EXPECT_EQ(first->update_id, 500);
  EXPECT_EQ(second->update_id, 503);
  EXPECT_EQ(first->secret_token, "abc");
  EXPECT_EQ(first->url, "http://127.0.0.1:9/hook");

  engine.finish_webhook_delivery(*first, WebhookResult{.ok = true, .error = {}, .retry_after = 0}, harness.now());
  auto third = engine.next_webhook_delivery(harness.now());
  ASSERT_TRUE(third);
  EXPECT_EQ(third->update_id, 501);
  EXPECT_EQ(engine.stats().updates_confirmed, 1u);
  EXPECT_EQ(engine.stats().updates_delivered, 3u);
}

TEST_F(EngineUpdates, WebhookRespectsMaxConnections) {
  ASSERT_TRUE(harness.call("setWebhook", {{"url", "http://127.0.0.1:9/hook"}, {"max_connections", 1}}).ok());
  push_messages(kAlice, 1);
  push_messages(kBob, 1);
  auto first = harness.engine().next_webhook_delivery(harness.now());
  ASSERT_TRUE(first);
  EXPECT_FALSE(harness.engine().next_webhook_delivery(harness.now()).has_value());
  EXPECT_FALSE(harness.engine().next_webhook_wakeup().has_value());
  harness.engine().finish_webhook_delivery(*first, WebhookResult{.ok = true, .error = {}, .retry_after = 0},
                                           harness.now());
  EXPECT_TRUE(harness.engine().next_webhook_delivery(harness.now()).has_value());
}

TEST_F(EngineUpdates, WebhookFailureRetriesWithBackoff) {
  ASSERT_TRUE(harness.call("setWebhook", {{"url", "http://127.0.0.1:9/hook"}}).ok());
  push_messages(kAlice, 2);
  auto& engine = harness.engine();
  WebhookResult failure{.ok = false, .error = "Wrong response from the webhook: 500 Internal Server Error",
                        .retry_after = 0};

  auto attempt = engine.next_webhook_delivery(harness.now());
  ASSERT_TRUE(attempt);
  engine.finish_webhook_delivery(*attempt, failure, harness.now());
  EXPECT_FALSE(engine.next_webhook_delivery(harness.now()).has_value()) << "the chat waits for its retry";
  ASSERT_TRUE(engine.next_webhook_wakeup().has_value());
  EXPECT_EQ(*engine.next_webhook_wakeup(), harness.now() + 1s);

  harness.advance(1s);
  attempt = engine.next_webhook_delivery(harness.now());
  ASSERT_TRUE(attempt);
  EXPECT_EQ(attempt->update_id, 500) << "the failed update is retried before the next one";
  engine.finish_webhook_delivery(*attempt, failure, harness.now());
  EXPECT_EQ(*engine.next_webhook_wakeup(), harness.now() + 2s);

  auto info = harness.call("getWebhookInfo");
  EXPECT_EQ(info.result().at("last_error_message").as_string(),
            "Wrong response from the webhook: 500 Internal Server Error");
  EXPECT_EQ(info.result().at("last_error_date").as_int64(), harness.engine().unix_time(harness.now()));
  EXPECT_EQ(info.result().at("pending_update_count").as_int64(), 2);
  EXPECT_EQ(engine.stats().webhook_failures, 2u);
}

TEST_F(EngineUpdates, WebhookHonoursRetryAfter) {
  ASSERT_TRUE(harness.call("setWebhook", {{"url", "http://127.0.0.1:9/hook"}}).ok());
  push_messages(kAlice, 1);
  auto& engine = harness.engine();
  auto attempt = engine.next_webhook_delivery(harness.now());
  ASSERT_TRUE(attempt);
  engine.finish_webhook_delivery(
      *attempt, WebhookResult{.ok = false, .error = "Wrong response from the webhook: 429 Too Many Requests",
                              .retry_after = 7},
      harness.now());
  EXPECT_EQ(*engine.next_webhook_wakeup(), harness.now() + 7s);
  engine.finish_webhook_delivery(*attempt, WebhookResult{.ok = true, .error = {}, .retry_after = 0}, harness.now());
  EXPECT_EQ(engine.stats().updates_confirmed, 0u) << "a second result for one attempt is ignored";
}

TEST_F(EngineUpdates, WebhookDeleteReturnsUpdatesToPolling) {
  ASSERT_TRUE(harness.call("setWebhook", {{"url", "http://127.0.0.1:9/hook"}}).ok());
  push_messages(kAlice, 2);
  auto attempt = harness.engine().next_webhook_delivery(harness.now());
  ASSERT_TRUE(attempt);
  ASSERT_TRUE(harness.call("deleteWebhook").ok());
  harness.engine().finish_webhook_delivery(*attempt, WebhookResult{.ok = true, .error = {}, .retry_after = 0},
                                           harness.now());
  auto reply = harness.call("getUpdates");
  EXPECT_EQ(update_ids(reply), (std::vector<std::int64_t>{500, 501})) << "results of an old webhook are ignored";
}

TEST_F(EngineUpdates, BlockBotSendsMyChatMember) {
  harness.engine().block_bot(kAlice, harness.now());
  auto reply = harness.call("getUpdates");
  ASSERT_EQ(reply.result().as_array().size(), 1u);
  auto const& update = reply.result().at(0);
  expect_same_shape(update, load_data("updates/my_chat_member_01.json"));
  EXPECT_EQ(update.at("my_chat_member").at("new_chat_member").at("status").as_string(), "kicked");
  auto send = harness.call("sendMessage", {{"chat_id", kAlice}, {"text", "hi"}});
  EXPECT_EQ(send.status, 403u);
}

TEST_F(EngineUpdates, ReplyLatencyIsMeasured) {
  harness.engine().push_user_message(kAlice, 0, "ping", harness.now());
  harness.call("getUpdates");
  harness.advance(250ms);
  ASSERT_TRUE(harness.call("sendMessage", {{"chat_id", kAlice}, {"text", "pong"}}).ok());
  auto const& latency = harness.engine().stats().reply_latency;
  EXPECT_EQ(latency.count(), 1u);
  EXPECT_GE(latency.max(), 250ms);
  EXPECT_TRUE(harness.engine().evaluate_condition("replies==1"));
}

}  // namespace
}  // namespace sluice::sandbox
