#include "redis/resp_reader.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include <sluice/redis/error.hpp>
#include <sluice/redis/reply.hpp>

namespace sluice::redis {
namespace {

using detail::RespReader;
using namespace std::string_view_literals;

// One reply of every RESP2 type, nested arrays, nil inside arrays, binary
// bytes and CRLF inside a bulk string, and a nil array.
constexpr std::string_view kStream =
    "+OK\r\n"
    "-ERR unknown command 'FOO'\r\n"
    ":-42\r\n"
    "$5\r\nhello\r\n"
    "$-1\r\n"
    "$0\r\n\r\n"
    "$6\r\na\r\nb\0c\r\n"
    "*3\r\n:1\r\n*2\r\n+x\r\n$-1\r\n-WRONGTYPE bad\r\n"
    "*0\r\n"
    "*-1\r\n"
    ":9223372036854775807\r\n"sv;

std::vector<Reply> expected_replies() {
  std::vector<Reply> nested;
  nested.push_back(Reply::make_simple_string("x"));
  nested.push_back(Reply::make_nil());
  std::vector<Reply> outer;
  outer.push_back(Reply::make_integer(1));
  outer.push_back(Reply::make_array(std::move(nested)));
  outer.push_back(Reply::make_error("WRONGTYPE bad"));

  std::vector<Reply> replies;
  replies.push_back(Reply::make_simple_string("OK"));
  replies.push_back(Reply::make_error("ERR unknown command 'FOO'"));
  replies.push_back(Reply::make_integer(-42));
  replies.push_back(Reply::make_bulk_string("hello"));
  replies.push_back(Reply::make_nil());
  replies.push_back(Reply::make_bulk_string(""));
  replies.push_back(Reply::make_bulk_string(std::string("a\r\nb\0c", 6)));
  replies.push_back(Reply::make_array(std::move(outer)));
  replies.push_back(Reply::make_array({}));
  replies.push_back(Reply::make_nil());
  replies.push_back(Reply::make_integer(9223372036854775807));
  return replies;
}

std::vector<Reply> drain(RespReader& reader) {
  std::vector<Reply> out;
  while (auto reply = reader.next()) {
    out.push_back(std::move(*reply));
  }
  return out;
}

TEST(RespReader, ParsesEveryReplyType) {
  RespReader reader;
  reader.feed(kStream);

  std::vector<Reply> replies = drain(reader);
  std::vector<Reply> expected = expected_replies();

  ASSERT_EQ(replies.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(replies[i], expected[i]) << "reply " << i << ": got " << replies[i].to_debug_string()
                                       << ", expected " << expected[i].to_debug_string();
  }
}

TEST(RespReader, KeepsErrorsApartFromStrings) {
  RespReader reader;
  reader.feed("+OK\r\n-OK\r\n$2\r\nOK\r\n");

  std::vector<Reply> replies = drain(reader);

  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].kind(), ReplyKind::simple_string);
  EXPECT_EQ(replies[1].kind(), ReplyKind::error);
  EXPECT_EQ(replies[2].kind(), ReplyKind::bulk_string);
  EXPECT_FALSE(replies[1].is_string());
  EXPECT_EQ(replies[1].error_code(), "OK");
  EXPECT_THROW((void)replies[1].as_string(), ServerError);
}

TEST(RespReader, SplitAtEveryByteBoundary) {
  std::vector<Reply> expected = expected_replies();

  for (std::size_t split = 0; split <= kStream.size(); ++split) {
    RespReader reader;
    reader.feed(kStream.substr(0, split));
    std::vector<Reply> replies = drain(reader);
    reader.feed(kStream.substr(split));
    std::vector<Reply> rest = drain(reader);
    replies.insert(replies.end(), rest.begin(), rest.end());

    ASSERT_EQ(replies.size(), expected.size()) << "split at byte " << split;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(replies[i], expected[i]) << "split at byte " << split << ", reply " << i;
    }
  }
}

TEST(RespReader, OneByteAtATime) {
  std::vector<Reply> expected = expected_replies();
  RespReader reader;
  std::vector<Reply> replies;

  for (char byte : kStream) {
    reader.feed(std::string_view(&byte, 1));
    std::vector<Reply> ready = drain(reader);
    replies.insert(replies.end(), ready.begin(), ready.end());
  }

  ASSERT_EQ(replies.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(replies[i], expected[i]) << "reply " << i;
  }
}

TEST(RespReader, ThreeWaySplitsOfNestedArray) {
  constexpr std::string_view kNested = "*2\r\n*2\r\n$3\r\nabc\r\n:7\r\n$-1\r\n"sv;
  Reply expected = Reply::make_array(
      {Reply::make_array({Reply::make_bulk_string("abc"), Reply::make_integer(7)}), Reply::make_nil()});

  for (std::size_t first = 0; first <= kNested.size(); ++first) {
    for (std::size_t second = first; second <= kNested.size(); ++second) {
      RespReader reader;
      reader.feed(kNested.substr(0, first));
      std::vector<Reply> replies = drain(reader);
      reader.feed(kNested.substr(first, second - first));
      std::vector<Reply> more = drain(reader);
      reader.feed(kNested.substr(second));
      std::vector<Reply> rest = drain(reader);
      replies.insert(replies.end(), more.begin(), more.end());
      replies.insert(replies.end(), rest.begin(), rest.end());

      ASSERT_EQ(replies.size(), 1u) << "splits at " << first << " and " << second;
      EXPECT_EQ(replies[0], expected) << "splits at " << first << " and " << second;
    }
  }
}

TEST(RespReader, LargeBulkStringInChunks) {
  std::string payload(1 << 20, 'x');
  for (std::size_t i = 0; i < payload.size(); i += 4099) {
    payload[i] = static_cast<char>('a' + i % 26);
  }
  std::string stream = "$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
  RespReader reader;
  std::vector<Reply> replies;

  for (std::size_t offset = 0; offset < stream.size(); offset += 1000) {
    reader.feed(std::string_view(stream).substr(offset, 1000));
    std::vector<Reply> ready = drain(reader);
    replies.insert(replies.end(), ready.begin(), ready.end());
  }

  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].as_string().size(), payload.size());
  EXPECT_TRUE(replies[0].as_string() == payload);
}

TEST(RespReader, RejectsInvalidTypeByte) {
  RespReader reader;
  reader.feed("?what\r\n");

  EXPECT_THROW((void)reader.next(), Error);
  try {
    (void)reader.next();
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::protocol_error);
  }
}

TEST(RespReader, ResetDropsPartialReply) {
  RespReader reader;
  reader.feed("$10\r\nabc");
  EXPECT_FALSE(reader.next().has_value());

  reader.reset();
  reader.feed(":5\r\n");
  std::vector<Reply> replies = drain(reader);

  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0], Reply::make_integer(5));
}

TEST(RespReader, ResetRecoversFromProtocolError) {
  RespReader reader;
  reader.feed("!bad\r\n");
  EXPECT_THROW((void)reader.next(), Error);

  reader.reset();
  reader.feed("+PONG\r\n");
  std::vector<Reply> replies = drain(reader);

  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0], Reply::make_simple_string("PONG"));
}

}  // namespace
}  // namespace sluice::redis
