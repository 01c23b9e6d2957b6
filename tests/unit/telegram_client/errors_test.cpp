#include <sluice/telegram/bot_api_response.hpp>
#include <sluice/telegram/errors.hpp>

#include <string>

#include <gtest/gtest.h>

#include "test_data.hpp"

namespace sluice::telegram {
namespace {

using test::read_test_data;

// Parses a recorded reply and returns the TelegramError it describes.
TelegramError error_from_file(std::string_view file, int http_status) {
  const std::string body = read_test_data(std::string("responses/") + std::string(file));
  const auto reply = parse_reply("sendMessage", http_status, body);
  try {
    reply_result("sendMessage", reply);
  } catch (const TelegramError& error) {
    return error;
  }
  throw std::runtime_error("reply_result did not throw TelegramError for " + std::string(file));
}

TEST(ReplyEnvelope, OkReplyReturnsResult) {
  const auto reply = parse_reply("getMe", 200, read_test_data("responses/ok_get_me_01.json"));
  const auto& result = reply_result("getMe", reply);
  ASSERT_TRUE(result.is_object());
  EXPECT_EQ(result.at("id").as_int64(), 100000019);
}

TEST(ReplyEnvelope, BadRequestFields) {
  const auto error = error_from_file("error_400_chat_not_found_01.json", 400);
  EXPECT_EQ(error.method(), "sendMessage");
  EXPECT_EQ(error.error_code(), 400);
  EXPECT_EQ(error.description(), "Bad Request: chat not found");
  EXPECT_FALSE(error.retry_after().has_value());
  EXPECT_FALSE(error.migrate_to_chat_id().has_value());
  EXPECT_FALSE(error.is_flood_limit());
}

TEST(ReplyEnvelope, ForbiddenFields) {
  const auto error = error_from_file("error_403_bot_blocked_01.json", 403);
  EXPECT_EQ(error.error_code(), 403);
  EXPECT_EQ(error.description(), "Forbidden: bot was blocked by the user");
}

TEST(ReplyEnvelope, ErrorWithoutErrorCode) {
  const auto error = error_from_file("error_403_no_error_code_01.json", 403);
  EXPECT_FALSE(error.error_code().has_value());
  EXPECT_EQ(error.description(), "Forbidden: bot was blocked by the user");
  EXPECT_NE(std::string(error.what()).find("no error_code"), std::string::npos) << error.what();
}

TEST(ReplyEnvelope, FloodLimitRetryAfter) {
  const auto error = error_from_file("error_429_retry_after_01.json", 429);
  EXPECT_EQ(error.error_code(), 429);
  EXPECT_TRUE(error.is_flood_limit());
  ASSERT_TRUE(error.retry_after().has_value());
  EXPECT_EQ(error.retry_after()->count(), 8);
  EXPECT_NE(std::string(error.what()).find("retry_after=8s"), std::string::npos) << error.what();
}

TEST(ReplyEnvelope, MigrateToChatId) {
  const auto first = error_from_file("error_400_group_migrated_01.json", 400);
  ASSERT_TRUE(first.migrate_to_chat_id().has_value());
  EXPECT_EQ(*first.migrate_to_chat_id(), -100000003);

  const auto second = error_from_file("error_400_group_migrated_02.json", 400);
  ASSERT_TRUE(second.migrate_to_chat_id().has_value());
  EXPECT_EQ(*second.migrate_to_chat_id(), -100000000001);
}

TEST(ReplyEnvelope, UnauthorizedAndConflict) {
  EXPECT_EQ(error_from_file("error_401_unauthorized_01.json", 401).error_code(), 401);
  EXPECT_EQ(error_from_file("error_409_conflict_getupdates_01.json", 409).error_code(), 409);
  EXPECT_EQ(error_from_file("error_409_webhook_active_01.json", 409).error_code(), 409);
}

TEST(ReplyEnvelope, GatewayPageIsNetworkError) {
  try {
    parse_reply("getMe", 502, "<html><body>502 Bad Gateway</body></html>");
    FAIL() << "parse_reply accepted an HTML page";
  } catch (const NetworkError& error) {
    EXPECT_EQ(error.http_status(), 502);
    EXPECT_TRUE(error.maybe_delivered());
    EXPECT_NE(std::string(error.what()).find("502"), std::string::npos) << error.what();
  }
}

TEST(ReplyEnvelope, GatewayClientErrorNotDelivered) {
  try {
    parse_reply("sendDocument", 413, "<html>Request Entity Too Large</html>");
    FAIL() << "parse_reply accepted an HTML page";
  } catch (const NetworkError& error) {
    EXPECT_EQ(error.http_status(), 413);
    EXPECT_FALSE(error.maybe_delivered());
  }
}

TEST(ReplyEnvelope, NonJsonOkStatusIsParseError) {
  try {
    parse_reply("getMe", 200, "not json");
    FAIL() << "parse_reply accepted a non-JSON body";
  } catch (const ApiParseError& error) {
    EXPECT_EQ(error.path(), "$");
    EXPECT_EQ(error.method(), "getMe");
  }
}

TEST(ReplyEnvelope, MissingOkIsParseError) {
  const auto reply = parse_reply("getMe", 200, R"({"result": true})");
  try {
    reply_result("getMe", reply);
    FAIL() << "reply_result accepted a reply without ok";
  } catch (const ApiParseError& error) {
    EXPECT_EQ(error.path(), "ok");
  }
}

TEST(ReplyEnvelope, OkWithoutResultIsParseError) {
  const auto reply = parse_reply("getMe", 200, R"({"ok": true})");
  try {
    reply_result("getMe", reply);
    FAIL() << "reply_result accepted an ok reply without result";
  } catch (const ApiParseError& error) {
    EXPECT_EQ(error.path(), "result");
  }
}

TEST(ReplyEnvelope, WrongTypedParametersAreIgnored) {
  const auto reply = parse_reply(
      "sendMessage", 429,
      R"({"ok": false, "error_code": 429, "description": "x", "parameters": {"retry_after": "soon"}})");
  try {
    reply_result("sendMessage", reply);
    FAIL() << "reply_result accepted ok=false";
  } catch (const TelegramError& error) {
    EXPECT_EQ(error.error_code(), 429);
    EXPECT_FALSE(error.retry_after().has_value());
  }
}

TEST(TelegramErrorText, RedactsTokenInDescription) {
  const std::string token = "4839574812:AAFD39kkdpWt3ywyRZergyOLMaJhac60qc";
  TelegramError error({.method = "getMe",
                       .error_code = 404,
                       .description = "Not Found: /bot" + token + "/getMe"});
  EXPECT_EQ(std::string(error.what()).find(token), std::string::npos) << error.what();
  EXPECT_EQ(error.description().find(token), std::string::npos) << error.description();
}

TEST(NetworkErrorText, SaysWhetherDelivered) {
  NetworkError maybe({.method = "sendMessage",
                      .code = std::make_error_code(std::errc::timed_out),
                      .maybe_delivered = true});
  EXPECT_NE(std::string(maybe.what()).find("may have been delivered"), std::string::npos)
      << maybe.what();

  NetworkError not_sent({.method = "sendMessage",
                         .code = std::make_error_code(std::errc::connection_refused),
                         .maybe_delivered = false});
  EXPECT_NE(std::string(not_sent.what()).find("was not delivered"), std::string::npos)
      << not_sent.what();
}

}  // namespace
}  // namespace sluice::telegram
