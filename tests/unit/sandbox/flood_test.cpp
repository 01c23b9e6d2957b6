#include <sluice/sandbox/flood.hpp>

#include <chrono>

#include <gtest/gtest.h>

namespace sluice::sandbox {
namespace {

using namespace std::chrono_literals;

constexpr Instant kStart = Instant{} + 1000h;

TEST(FloodControl, PrivateChatAllowsBurstThenOnePerSecond) {
  FloodControl flood;
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(flood.admit(1, false, false, kStart).has_value()) << "send " << i;
  }
  auto retry = flood.admit(1, false, false, kStart);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(*retry, 1);
  EXPECT_FALSE(flood.admit(1, false, false, kStart + 1s).has_value());
  EXPECT_TRUE(flood.admit(1, false, false, kStart + 1s).has_value());
}

TEST(FloodControl, ChatsAreIndependent) {
  FloodControl flood;
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(flood.admit(1, false, false, kStart).has_value());
  }
  EXPECT_TRUE(flood.admit(1, false, false, kStart).has_value());
  EXPECT_FALSE(flood.admit(2, false, false, kStart).has_value());
}

TEST(FloodControl, GroupLimitGivesSecondsToWait) {
  FloodControl flood;
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(flood.admit(-100, true, false, kStart).has_value()) << "send " << i;
  }
  auto retry = flood.admit(-100, true, false, kStart);
  ASSERT_TRUE(retry.has_value());
  // 20 per minute: one send every 3 s.
  EXPECT_EQ(*retry, 3);
  EXPECT_TRUE(flood.admit(-100, true, false, kStart + 2s).has_value());
  EXPECT_FALSE(flood.admit(-100, true, false, kStart + 3s).has_value());
}

TEST(FloodControl, GlobalLimitSpansChats) {
  FloodControl flood;
  for (int chat = 1; chat <= 30; ++chat) {
    EXPECT_FALSE(flood.admit(chat, false, false, kStart).has_value()) << "chat " << chat;
  }
  auto retry = flood.admit(31, false, false, kStart);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(*retry, 1);
  // The rejected send took nothing: chat 31 has its full burst later.
  EXPECT_FALSE(flood.admit(31, false, false, kStart + 1s).has_value());
}

TEST(FloodControl, PaidBroadcastUsesItsOwnBucket) {
  FloodControl flood;
  for (int chat = 1; chat <= 30; ++chat) {
    EXPECT_FALSE(flood.admit(chat, false, false, kStart).has_value());
  }
  for (int chat = 100; chat < 1100; ++chat) {
    EXPECT_FALSE(flood.admit(chat, false, true, kStart).has_value()) << "chat " << chat;
  }
  EXPECT_TRUE(flood.admit(2000, false, true, kStart).has_value());
}

TEST(FloodControl, DisabledAdmitsEverything) {
  FloodOptions options;
  options.enabled = false;
  FloodControl flood(options);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(flood.admit(1, false, false, kStart).has_value());
  }
}

TEST(FloodControl, RetryAfterRoundsUp) {
  FloodOptions options;
  options.private_chat = RateLimit{.count = 1, .period = 10s, .burst = 1};
  FloodControl flood(options);
  EXPECT_FALSE(flood.admit(1, false, false, kStart).has_value());
  auto retry = flood.admit(1, false, false, kStart + 2500ms);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(*retry, 8);
}

}  // namespace
}  // namespace sluice::sandbox
