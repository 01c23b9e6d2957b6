#include <sluice/redis/reply.hpp>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <sluice/redis/error.hpp>

namespace sluice::redis {
namespace {

TEST(Reply, DefaultIsNil) {
  Reply reply;

  EXPECT_TRUE(reply.is_nil());
  EXPECT_EQ(reply.as_optional_string(), std::nullopt);
  EXPECT_EQ(reply.to_debug_string(), "nil");
}

TEST(Reply, WrongKindThrowsUnexpectedReply) {
  Reply reply = Reply::make_integer(3);

  try {
    (void)reply.as_string();
    FAIL() << "as_string on an integer did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::unexpected_reply);
    EXPECT_NE(std::string(e.what()).find("got 3"), std::string::npos) << e.what();
  }
}

TEST(Reply, ErrorReplyThrowsServerError) {
  Reply reply = Reply::make_error("WRONGTYPE Operation against a key holding the wrong kind of value");

  EXPECT_EQ(reply.error_code(), "WRONGTYPE");
  try {
    reply.throw_if_error("GET");
    FAIL() << "throw_if_error did not throw";
  } catch (const ServerError& e) {
    EXPECT_EQ(e.error_code(), "WRONGTYPE");
    EXPECT_NE(std::string(e.what()).find("redis GET failed"), std::string::npos) << e.what();
  }
}

TEST(Reply, DebugStringOfNestedArray) {
  std::vector<Reply> inner{Reply::make_simple_string("OK"), Reply::make_error("ERR x")};
  std::vector<Reply> outer{Reply::make_bulk_string("a"), Reply::make_integer(1), Reply::make_nil(),
                           Reply::make_array(inner)};
  Reply reply = Reply::make_array(outer);

  EXPECT_EQ(reply.to_debug_string(), "[\"a\", 1, nil, [+OK, (error) ERR x]]");
}

TEST(Reply, EqualityComparesKindAndValue) {
  EXPECT_EQ(Reply::make_bulk_string("x"), Reply::make_bulk_string("x"));
  EXPECT_NE(Reply::make_bulk_string("x"), Reply::make_simple_string("x"));
  EXPECT_NE(Reply::make_integer(1), Reply::make_integer(2));
  EXPECT_EQ(Reply::make_nil(), Reply());
}

TEST(Reply, TakeStringMovesText) {
  Reply reply = Reply::make_bulk_string(std::string(100, 'z'));

  std::string text = reply.take_string();

  EXPECT_EQ(text, std::string(100, 'z'));
}

}  // namespace
}  // namespace sluice::redis
