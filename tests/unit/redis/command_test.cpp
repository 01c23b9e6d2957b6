#include <sluice/redis/command.hpp>

#include <clocale>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "redis/resp_reader.hpp"

namespace sluice::redis {
namespace {

using namespace std::string_view_literals;

TEST(Command, EncodesArrayOfBulkStrings) {
  Command command("SET", "key", "value");

  EXPECT_EQ(command.encode(), "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
  EXPECT_EQ(command.size(), 3u);
  EXPECT_EQ(command.name(), "SET");
}

TEST(Command, FormatsIntegers) {
  std::int64_t lowest = std::numeric_limits<std::int64_t>::min();
  std::uint64_t highest = std::numeric_limits<std::uint64_t>::max();
  Command command("X", 0, -7, 60L, lowest, highest, static_cast<std::uint8_t>(200));

  EXPECT_EQ(command.encode(),
            "*7\r\n$1\r\nX\r\n$1\r\n0\r\n$2\r\n-7\r\n$2\r\n60\r\n"
            "$20\r\n-9223372036854775808\r\n$20\r\n18446744073709551615\r\n$3\r\n200\r\n");
}

TEST(Command, FormatsDoublesWithoutLocale) {
  // A locale with a decimal comma must not change the encoding; the test
  // tolerates machines where the locale is not installed.
  const char* previous = std::setlocale(LC_NUMERIC, nullptr);
  std::string saved = previous != nullptr ? previous : "C";
  std::setlocale(LC_NUMERIC, "de_DE.UTF-8");

  Command command("ZADD", "z", 1.5, 0.1, -2.0, std::numeric_limits<double>::infinity());

  std::setlocale(LC_NUMERIC, saved.c_str());
  EXPECT_EQ(command.encode(),
            "*6\r\n$4\r\nZADD\r\n$1\r\nz\r\n$3\r\n1.5\r\n$3\r\n0.1\r\n$2\r\n-2\r\n$3\r\ninf\r\n");
}

TEST(Command, KeepsBinaryBytes) {
  std::string binary("a\0\r\nb", 5);
  Command command("SET", "k", binary);

  EXPECT_EQ(command.encode(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0\r\nb\r\n"sv);
}

TEST(Command, EmptyArgument) {
  Command command("SET", "k", "");

  EXPECT_EQ(command.encode(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
}

TEST(Command, AppendsRangesAndArguments) {
  std::vector<std::string> keys{"a", "bb"};
  std::vector<int> numbers{1, 22};
  Arguments extra("x", 3);
  Command command("DEL");

  command.args(keys).args(numbers).append(extra);

  EXPECT_EQ(command.size(), 7u);
  EXPECT_EQ(command.encode(),
            "*7\r\n$3\r\nDEL\r\n$1\r\na\r\n$2\r\nbb\r\n$1\r\n1\r\n$2\r\n22\r\n$1\r\nx\r\n$1\r\n3\r\n");
}

TEST(Command, EmptyCommandHasNoName) {
  Command command;

  EXPECT_TRUE(command.empty());
  EXPECT_EQ(command.name(), "");
  EXPECT_EQ(command.encode(), "*0\r\n");
}

TEST(Command, EncodingParsesBackAsArray) {
  // The encoding of a command is itself valid RESP: a server parses it the
  // way our reader does.
  Command command("HSET", "h", "field", 12, std::string(300, 'y'));
  detail::RespReader reader;

  reader.feed(command.encode());
  auto reply = reader.next();

  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->is_array());
  const auto& parts = reply->as_array();
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(parts[0].as_string(), "HSET");
  EXPECT_EQ(parts[3].as_string(), "12");
  EXPECT_EQ(parts[4].as_string(), std::string(300, 'y'));
}

}  // namespace
}  // namespace sluice::redis
