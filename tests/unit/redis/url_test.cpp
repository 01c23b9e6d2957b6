#include <sluice/redis/url.hpp>

#include <string>

#include <gtest/gtest.h>

#include <sluice/redis/error.hpp>

namespace sluice::redis {
namespace {

Errc parse_error(const std::string& url) {
  try {
    (void)parse_url(url);
  } catch (const Error& e) {
    return e.errc();
  }
  return Errc{};
}

std::string parse_error_message(const std::string& url) {
  try {
    (void)parse_url(url);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

TEST(RedisUrl, HostAndPort) {
  ServerAddress address = parse_url("redis://127.0.0.1:6380");

  EXPECT_EQ(address.host, "127.0.0.1");
  EXPECT_EQ(address.port, 6380);
  EXPECT_EQ(address.password, "");
  EXPECT_EQ(address.database, 0);
  EXPECT_EQ(address.endpoint(), "127.0.0.1:6380");
}

TEST(RedisUrl, DefaultsPortAndDatabase) {
  ServerAddress address = parse_url("redis://cache.internal");

  EXPECT_EQ(address.host, "cache.internal");
  EXPECT_EQ(address.port, 6379);
  EXPECT_EQ(address.database, 0);
}

TEST(RedisUrl, PasswordAndDatabase) {
  ServerAddress address = parse_url("redis://:s%40cret@localhost:7000/3");

  EXPECT_EQ(address.username, "");
  EXPECT_EQ(address.password, "s@cret");
  EXPECT_EQ(address.database, 3);
}

TEST(RedisUrl, UserAndPassword) {
  ServerAddress address = parse_url("redis://bot:pw@10.0.0.1/0");

  EXPECT_EQ(address.username, "bot");
  EXPECT_EQ(address.password, "pw");
  EXPECT_EQ(address.port, 6379);
}

TEST(RedisUrl, Ipv6Host) {
  ServerAddress address = parse_url("redis://[::1]:6381");

  EXPECT_EQ(address.host, "::1");
  EXPECT_EQ(address.endpoint(), "[::1]:6381");
}

TEST(RedisUrl, RejectsTls) {
  EXPECT_EQ(parse_error("rediss://localhost:6379"), Errc::invalid_url);
  EXPECT_NE(parse_error_message("rediss://localhost:6379").find("TLS"), std::string::npos);
}

TEST(RedisUrl, RejectsMalformedInput) {
  EXPECT_EQ(parse_error("http://localhost"), Errc::invalid_url);
  EXPECT_EQ(parse_error("redis://"), Errc::invalid_url);
  EXPECT_EQ(parse_error("redis://localhost/db"), Errc::invalid_url);
  EXPECT_EQ(parse_error("redis://localhost/-1"), Errc::invalid_url);
  EXPECT_EQ(parse_error("redis://localhost:0"), Errc::invalid_url);
  EXPECT_EQ(parse_error("redis://localhost:99999"), Errc::invalid_url);
  EXPECT_EQ(parse_error("redis://user@localhost"), Errc::invalid_url);
  EXPECT_EQ(parse_error("redis://localhost?timeout=1"), Errc::invalid_url);
  EXPECT_EQ(parse_error("localhost:6379"), Errc::invalid_url);
}

TEST(RedisUrl, ErrorsHidePassword) {
  std::string message = parse_error_message("redis://:hunter2@localhost/notanumber");

  EXPECT_NE(message, "");
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  EXPECT_NE(message.find("***@localhost"), std::string::npos) << message;
}

TEST(RedisUrl, RedactsUserInformation) {
  EXPECT_EQ(redact_url("redis://:pw@host:1/2"), "redis://***@host:1/2");
  EXPECT_EQ(redact_url("redis://user:p@ss@host"), "redis://***@host");
  EXPECT_EQ(redact_url("redis://host:1/2"), "redis://host:1/2");
  EXPECT_EQ(redact_url("redis://host/a@b"), "redis://host/a@b");
  EXPECT_EQ(redact_url("garbage:pw@x"), "***@x");
}

}  // namespace
}  // namespace sluice::redis
