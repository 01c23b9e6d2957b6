#include <sluice/telegram/retry.hpp>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::telegram {
namespace {

using namespace std::chrono_literals;

struct Case {
  std::string name;
  Failure failure;
  std::string_view method;
  bool opted_in;
  bool expect_retry;
};

TelegramError telegram_error(std::optional<int> code,
                             std::optional<std::chrono::seconds> retry_after = {}) {
  return TelegramError(
      {.method = "sendMessage", .error_code = code, .description = "x", .retry_after = retry_after});
}

NetworkError network_error(bool maybe_delivered, std::optional<int> http_status = {}) {
  return NetworkError({.method = "sendMessage",
                       .code = std::make_error_code(std::errc::connection_reset),
                       .maybe_delivered = maybe_delivered,
                       .http_status = http_status});
}

TEST(RetryClassify, ErrorToFailureKind) {
  EXPECT_EQ(classify_failure(telegram_error(429, 3s)).kind, FailureKind::flood_limit);
  EXPECT_EQ(classify_failure(telegram_error(429, 3s)).retry_after, std::optional(3s));
  EXPECT_EQ(classify_failure(telegram_error(500)).kind, FailureKind::server_error);
  EXPECT_EQ(classify_failure(telegram_error(502)).kind, FailureKind::server_error);
  for (int code : {400, 401, 403, 404, 409, 413}) {
    EXPECT_EQ(classify_failure(telegram_error(code)).kind, FailureKind::rejected) << code;
  }
  EXPECT_EQ(classify_failure(telegram_error(std::nullopt)).kind, FailureKind::rejected);
  EXPECT_EQ(classify_failure(network_error(false)).kind, FailureKind::not_sent);
  EXPECT_EQ(classify_failure(network_error(true)).kind, FailureKind::maybe_delivered);
  for (auto kind : {http::ErrorKind::invalid_request, http::ErrorKind::tls_certificate}) {
    NetworkError configuration({.method = "getMe", .kind = kind, .code = {}, .maybe_delivered = false});
    EXPECT_EQ(classify_failure(configuration).kind, FailureKind::configuration);
  }
  EXPECT_EQ(classify_failure(network_error(true, 502)).kind, FailureKind::maybe_delivered);
  EXPECT_EQ(classify_failure(network_error(false, 413)).kind, FailureKind::rejected);
  EXPECT_EQ(classify_failure(ApiParseError("getMe", "result.id", "missing")).kind,
            FailureKind::invalid_reply);
}

TEST(RetryDecide, ClassificationTable) {
  const std::vector<Case> cases = {
      {"429 sendMessage", {FailureKind::flood_limit, 5s}, "sendMessage", false, true},
      {"429 getMe", {FailureKind::flood_limit, 5s}, "getMe", false, true},
      {"5xx getMe", {FailureKind::server_error}, "getMe", false, true},
      {"5xx getUpdates", {FailureKind::server_error}, "getUpdates", false, true},
      {"5xx sendMessage", {FailureKind::server_error}, "sendMessage", false, false},
      {"5xx sendMessage opted in", {FailureKind::server_error}, "sendMessage", true, true},
      {"5xx editMessageText", {FailureKind::server_error}, "editMessageText", false, true},
      {"not sent sendMessage", {FailureKind::not_sent}, "sendMessage", false, true},
      {"not sent getMe", {FailureKind::not_sent}, "getMe", false, true},
      {"maybe delivered sendMessage", {FailureKind::maybe_delivered}, "sendMessage", false,
       false},
      {"maybe delivered sendMessage opted in", {FailureKind::maybe_delivered}, "sendMessage",
       true, true},
      {"maybe delivered copyMessage", {FailureKind::maybe_delivered}, "copyMessage", false,
       false},
      {"maybe delivered deleteMessage", {FailureKind::maybe_delivered}, "deleteMessage", false,
       true},
      {"maybe delivered answerCallbackQuery", {FailureKind::maybe_delivered},
       "answerCallbackQuery", false, true},
      {"maybe delivered getUpdates", {FailureKind::maybe_delivered}, "getUpdates", false, true},
      {"maybe delivered createChatInviteLink", {FailureKind::maybe_delivered},
       "createChatInviteLink", false, false},
      {"maybe delivered logOut", {FailureKind::maybe_delivered}, "logOut", false, false},
      {"rejected getMe", {FailureKind::rejected}, "getMe", false, false},
      {"rejected opted in", {FailureKind::rejected}, "sendMessage", true, false},
      {"invalid reply getMe", {FailureKind::invalid_reply}, "getMe", false, false},
      {"invalid reply opted in", {FailureKind::invalid_reply}, "sendMessage", true, false},
      {"configuration getMe", {FailureKind::configuration}, "getMe", false, false},
      {"configuration opted in", {FailureKind::configuration}, "sendMessage", true, false},
  };
  const RetryOptions options;
  for (const auto& c : cases) {
    const RetryContext context{.method = c.method, .resend_maybe_delivered = c.opted_in};
    const auto decision = decide_retry(c.failure, context, options);
    EXPECT_EQ(decision.retry, c.expect_retry) << c.name << ": " << decision.reason;
  }
}

TEST(RetryDecide, FloodLimitWaitsRetryAfter) {
  const auto decision =
      decide_retry({FailureKind::flood_limit, 7s}, {.method = "sendMessage"}, RetryOptions{});
  EXPECT_TRUE(decision.retry);
  EXPECT_EQ(decision.delay, 7000ms);
}

TEST(RetryDecide, FloodLimitRetryCanBeOff) {
  const auto decision = decide_retry({FailureKind::flood_limit, 7s}, {.method = "sendMessage"},
                                     RetryOptions{.retry_flood_limit = false});
  EXPECT_FALSE(decision.retry);
}

TEST(RetryDecide, StopsAtMaxAttempts) {
  const RetryOptions options{.max_attempts = 3};
  EXPECT_TRUE(decide_retry({FailureKind::not_sent}, {.method = "getMe", .attempts_made = 2},
                           options)
                  .retry);
  EXPECT_FALSE(decide_retry({FailureKind::not_sent}, {.method = "getMe", .attempts_made = 3},
                            options)
                   .retry);
}

TEST(RetryDecide, StopsWhenElapsedBudgetSpent) {
  const RetryOptions options{.max_elapsed = 10s};
  EXPECT_TRUE(decide_retry({FailureKind::flood_limit, 5s},
                           {.method = "sendMessage", .elapsed = 4s}, options)
                  .retry);
  EXPECT_FALSE(decide_retry({FailureKind::flood_limit, 5s},
                            {.method = "sendMessage", .elapsed = 6s}, options)
                   .retry);
  EXPECT_FALSE(decide_retry({FailureKind::flood_limit, 60s}, {.method = "sendMessage"}, options)
                   .retry);
}

TEST(RetryBackoff, GrowsAndCaps) {
  const RetryOptions options{
      .initial_backoff = 100ms, .max_backoff = 1s, .backoff_multiplier = 2.0};
  // jitter 0 gives the lower half of the step, jitter near 1 the full step.
  EXPECT_EQ(backoff_delay(options, 1, 0.0), 50ms);
  EXPECT_EQ(backoff_delay(options, 2, 0.0), 100ms);
  EXPECT_EQ(backoff_delay(options, 3, 0.0), 200ms);
  EXPECT_EQ(backoff_delay(options, 10, 0.0), 500ms);
  EXPECT_EQ(backoff_delay(options, 1, 1.0), 100ms);
  EXPECT_EQ(backoff_delay(options, 10, 1.0), 1000ms);
}

TEST(RetryIdempotent, MethodTable) {
  for (std::string_view method :
       {"getMe", "getUpdates", "getChat", "setWebhook", "deleteWebhook", "deleteMessage",
        "editMessageText", "editMessageReplyMarkup", "answerCallbackQuery", "answerInlineQuery",
        "pinChatMessage", "unpinAllChatMessages", "banChatMember", "unbanChatMember",
        "restrictChatMember", "promoteChatMember", "sendChatAction", "leaveChat", "stopPoll",
        "setMyCommands", "closeForumTopic", "approveChatJoinRequest"}) {
    EXPECT_TRUE(is_idempotent(method)) << method;
  }
  for (std::string_view method :
       {"sendMessage", "sendPhoto", "sendMediaGroup", "forwardMessage", "copyMessage",
        "createChatInviteLink", "exportChatInviteLink", "createForumTopic", "logOut", "close",
        "refundStarPayment", "transferGift", "uploadStickerFile", "sendInvoice", "postStory",
        "settle", "getter"}) {
    EXPECT_FALSE(is_idempotent(method)) << method;
  }
}

}  // namespace
}  // namespace sluice::telegram
