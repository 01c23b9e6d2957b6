#include <sluice/telegram/redact.hpp>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

namespace sluice::telegram {
namespace {

constexpr std::string_view kToken = "4839574812:AAFD39kkdpWt3ywyRZergyOLMaJhac60qc";

TEST(Redact, TokenInUrlPath) {
  const std::string url = "https://api.telegram.org/bot" + std::string(kToken) + "/getMe";
  EXPECT_EQ(redact(url), "https://api.telegram.org/bot<redacted>/getMe");
}

TEST(Redact, SeveralTokensInOneLine) {
  const std::string line = "a=" + std::string(kToken) + " b=" + std::string(kToken) + ".";
  EXPECT_EQ(redact(line), "a=<redacted> b=<redacted>.");
}

TEST(Redact, TokenWithDashesAndUnderscores) {
  EXPECT_EQ(redact("x 1:AAAA_BBBB-CCCC_DDDD-EEEE_FFFF-GG y"), "x <redacted> y");
}

TEST(Redact, LeavesOrdinaryColonsAlone) {
  for (std::string_view text :
       {"12:30 meeting", "http://127.0.0.1:8080/path", "chat_id=-1001:short", "a:b:c",
        "12345:ABCDEFGHIJKLMNOPQRSTUVWXYZ012"}) {
    EXPECT_EQ(redact(text), text) << "text: " << text;
  }
}

TEST(Redact, RemovesRegisteredSecret) {
  register_secret("webhook-secret-value-7");
  EXPECT_EQ(redact("header X-Secret: webhook-secret-value-7!"), "header X-Secret: <redacted>!");
  EXPECT_TRUE(contains_secret("...webhook-secret-value-7..."));
}

TEST(Redact, RegisteringTwiceAddsOnce) {
  register_secret("another-secret-abc");
  const auto count = registered_secret_count();
  register_secret("another-secret-abc");
  EXPECT_EQ(registered_secret_count(), count);
}

TEST(Redact, RejectsShortSecret) {
  EXPECT_THROW(register_secret("short"), std::invalid_argument);
}

TEST(Redact, ContainsSecretFindsToken) {
  EXPECT_TRUE(contains_secret(std::string("token=") + std::string(kToken)));
  EXPECT_FALSE(contains_secret("nothing secret here 12:30"));
}

TEST(RedactingSink, CleansLoggedPayload) {
  std::ostringstream out;
  auto inner = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("redact_test", inner);
  logger.set_pattern("%v");
  install_redaction(logger);

  logger.info("calling /bot{}/sendMessage", kToken);
  logger.flush();

  EXPECT_EQ(out.str().find(kToken), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("/bot<redacted>/sendMessage"), std::string::npos) << out.str();
}

TEST(RedactingSink, InstallTwiceWrapsOnce) {
  std::ostringstream out;
  auto inner = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("redact_test_twice", inner);
  install_redaction(logger);
  install_redaction(logger);

  ASSERT_EQ(logger.sinks().size(), 1U);
  auto wrapper = std::dynamic_pointer_cast<RedactingSink>(logger.sinks().front());
  ASSERT_NE(wrapper, nullptr);
  EXPECT_EQ(std::dynamic_pointer_cast<RedactingSink>(wrapper->inner()), nullptr);
}

TEST(RedactingSink, HonoursInnerSinkLevel) {
  std::ostringstream out;
  auto inner = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("redact_test_level", inner);
  logger.set_level(spdlog::level::trace);
  install_redaction(logger);
  inner->set_level(spdlog::level::warn);

  logger.info("dropped");
  logger.warn("kept");
  logger.flush();

  EXPECT_EQ(out.str().find("dropped"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("kept"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace sluice::telegram
