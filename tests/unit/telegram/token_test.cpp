#include <sluice/telegram/token.hpp>

#include <gtest/gtest.h>

namespace {

using sluice::telegram::bot_id_of;

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

}  // namespace
