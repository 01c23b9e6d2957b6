#include <sluice/telegram/token.hpp>

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace {

using sluice::telegram::bot_id_of;
using sluice::telegram::check_token;

TEST(BotIdOf, ReadsTheNumberBeforeTheColon) {
  EXPECT_EQ(bot_id_of("123456789:AAHsandboxTokenForLocalTests000000"), 123456789);
}

TEST(BotIdOf, RejectsTokensWithoutABotId) {
  EXPECT_EQ(bot_id_of("abcdefghijklmnopqrstuvwxyz0123456789"), std::nullopt);
  EXPECT_EQ(bot_id_of(":AAH"), std::nullopt);
  EXPECT_EQ(bot_id_of("12a:AAH"), std::nullopt);
  EXPECT_EQ(bot_id_of("-5:AAH"), std::nullopt);
  EXPECT_EQ(bot_id_of("+5:AAH"), std::nullopt);
  EXPECT_EQ(bot_id_of("0:AAH"), std::nullopt);
  EXPECT_EQ(bot_id_of("12345678901234567890123:AAH"), std::nullopt);
}

TEST(CheckToken, AcceptsTheFormBotFatherIssues) {
  EXPECT_EQ(check_token("123456789:AAHsandbox_Token-ForLocalTests000000"), std::nullopt);
}

TEST(CheckToken, NamesTheProblemWithoutTheToken) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"AAHsandboxTokenWithoutTheBotId", "starts with the bot id"},
      {"123:abc def", "a space at position 8"},
      {"123:abc\r\n", "a control character at position 8"},
      {"123:abc/def", "'/' at position 8"},
      {"123:abc\xc3\xa9", "a non-ASCII byte at position 8"},
  };
  for (const auto& [token, expected] : cases) {
    const auto problem = check_token(token);
    ASSERT_TRUE(problem.has_value()) << expected;
    EXPECT_NE(problem->find(expected), std::string::npos) << *problem;
    EXPECT_EQ(problem->find("abc"), std::string::npos) << *problem;
  }
}

}  // namespace
