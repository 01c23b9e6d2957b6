// UTF-16 entity offsets, the formatting builder and the keyboard builders.

#include <gtest/gtest.h>

#include <string>

#include <sluice/telegram/formatting.hpp>
#include <sluice/telegram/json.hpp>
#include <sluice/telegram/keyboards.hpp>
#include <sluice/telegram/utf16.hpp>

namespace sluice::telegram {
namespace {

// U+1F602 FACE WITH TEARS OF JOY: 4 bytes, a surrogate pair in UTF-16.
constexpr std::string_view kLaughing = "\xF0\x9F\x98\x82";
// "e" followed by U+0301 COMBINING ACUTE ACCENT (2 bytes, 1 unit).
constexpr std::string_view kCombinedE = "e\xCC\x81";
// Family: man, ZWJ, woman, ZWJ, girl: 3 emoji (2 units each) + 2 ZWJ (1 unit each).
constexpr std::string_view kFamily =
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7";

MessageEntity entity(std::int64_t offset, std::int64_t length) {
  return MessageEntity{.type = "bold", .offset = offset, .length = length};
}

TEST(Utf16, LengthCountsCodeUnits) {
  EXPECT_EQ(utf16_length(""), 0U);
  EXPECT_EQ(utf16_length("abc"), 3U);
  EXPECT_EQ(utf16_length("\xD0\x9B\xD0\xBE\xD0\xBB"), 3U);  // "Лол"
  EXPECT_EQ(utf16_length(kLaughing), 2U);
  EXPECT_EQ(utf16_length(kCombinedE), 2U);
  EXPECT_EQ(utf16_length(kFamily), 8U);
  EXPECT_EQ(utf16_length("\xE2\x82\xAC"), 1U);  // euro sign, 3 bytes
}

TEST(Utf16, EntityAfterEmojiSelectsWord) {
  const std::string text = std::string(kLaughing) + " hello";
  // "hello" starts after 2 units of emoji and a space.
  EXPECT_EQ(entity_text(text, entity(3, 5)), "hello");
  EXPECT_EQ(entity_text(text, entity(0, 2)), kLaughing);
  EXPECT_EQ(bytes_to_utf16(text, 5, 5), (Utf16Range{.offset = 3, .length = 5}));
  EXPECT_EQ(utf16_to_bytes(text, 3, 5), (ByteRange{.offset = 5, .length = 5}));
}

TEST(Utf16, SplitSurrogatePairRejected) {
  const std::string text = std::string(kLaughing) + "x";
  EXPECT_FALSE(utf16_to_bytes(text, 1, 1).has_value());
  EXPECT_FALSE(utf16_to_bytes(text, 0, 1).has_value());
  EXPECT_FALSE(utf16_to_bytes(text, 1, 2).has_value());
  EXPECT_TRUE(utf16_to_bytes(text, 2, 1).has_value());
  EXPECT_FALSE(bytes_to_utf16(text, 1, 3).has_value());
  EXPECT_FALSE(bytes_to_utf16(text, 0, 2).has_value());
}

TEST(Utf16, CombiningMarksCountSeparately) {
  const std::string text = "caf" + std::string(kCombinedE) + "!";
  EXPECT_EQ(entity_text(text, entity(0, 5)), "caf" + std::string(kCombinedE));
  // Offsets may split a letter from its accent; both halves are valid code points.
  EXPECT_EQ(entity_text(text, entity(3, 1)), "e");
  EXPECT_EQ(entity_text(text, entity(4, 1)), "\xCC\x81");
}

TEST(Utf16, ZwjSequenceSpansEightUnits) {
  const std::string text = "a" + std::string(kFamily) + "b";
  EXPECT_EQ(entity_text(text, entity(1, 8)), kFamily);
  EXPECT_EQ(entity_text(text, entity(9, 1)), "b");
  EXPECT_EQ(bytes_to_utf16(text, 1, kFamily.size()), (Utf16Range{.offset = 1, .length = 8}));
}

TEST(Utf16, OutOfRangeRejected) {
  EXPECT_FALSE(utf16_to_bytes("abc", 2, 2).has_value());
  EXPECT_FALSE(utf16_to_bytes("abc", -1, 1).has_value());
  EXPECT_FALSE(utf16_to_bytes("abc", 1, -1).has_value());
  EXPECT_FALSE(utf16_to_bytes("abc", INT64_MAX, INT64_MAX).has_value());
  EXPECT_FALSE(bytes_to_utf16("abc", 4, 0).has_value());
  EXPECT_FALSE(bytes_to_utf16("abc", 1, SIZE_MAX).has_value());
  EXPECT_EQ(utf16_to_bytes("abc", 3, 0), (ByteRange{.offset = 3, .length = 0}));
  EXPECT_EQ(entity_text("", entity(0, 0)), "");
}

TEST(Utf16, InvalidUtf8CountsPerByte) {
  // A lone continuation byte, a truncated 3-byte sequence, an overlong "/"
  // and an encoded surrogate each count one unit per byte.
  EXPECT_EQ(utf16_length("\x80"), 1U);
  EXPECT_EQ(utf16_length("\xE2\x82"), 2U);
  EXPECT_EQ(utf16_length("\xC0\xAF"), 2U);
  EXPECT_EQ(utf16_length("\xED\xA0\x80"), 3U);
  EXPECT_EQ(utf16_length("\xF4\x90\x80\x80"), 4U);  // above U+10FFFF
  const std::string text = "\xFF" "ab";
  EXPECT_EQ(entity_text(text, entity(1, 2)), "ab");
}

TEST(Utf16, EveryPrefixOfEmojiTextIsSafe) {
  const std::string text = "x" + std::string(kFamily) + std::string(kLaughing) + "y";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    const std::string prefix = text.substr(0, cut);
    const std::size_t units = utf16_length(prefix);
    for (std::int64_t offset = 0; offset <= static_cast<std::int64_t>(units) + 1; ++offset) {
      const auto range = utf16_to_bytes(prefix, offset, 1);
      if (range) {
        EXPECT_LE(range->offset + range->length, prefix.size());
      }
    }
  }
}

TEST(FormattedText, OffsetsCountUtf16) {
  FormattedText text;
  text.plain(kLaughing).plain(" ").bold("bold").plain(" ").italic(kFamily).link("site", "https://example.org");
  EXPECT_EQ(text.text(), std::string(kLaughing) + " bold " + std::string(kFamily) + "site");
  ASSERT_EQ(text.entities().size(), 3U);
  EXPECT_EQ(text.entities()[0], (MessageEntity{.type = "bold", .offset = 3, .length = 4}));
  EXPECT_EQ(text.entities()[1], (MessageEntity{.type = "italic", .offset = 8, .length = 8}));
  EXPECT_EQ(text.entities()[2],
            (MessageEntity{.type = "text_link", .offset = 16, .length = 4, .url = "https://example.org"}));
  EXPECT_EQ(text.utf16_length(), 20);
  for (const MessageEntity& e : text.entities()) {
    EXPECT_TRUE(entity_text(text.text(), e).has_value());
  }
  EXPECT_EQ(entity_text(text.text(), text.entities()[1]), kFamily);
}

TEST(FormattedText, NestingListsOuterFirst) {
  FormattedText inner;
  inner.plain("a ").italic("b");
  FormattedText text;
  text.plain(">").bold(inner).code("c");
  EXPECT_EQ(text.text(), ">a bc");
  ASSERT_EQ(text.entities().size(), 3U);
  EXPECT_EQ(text.entities()[0], (MessageEntity{.type = "bold", .offset = 1, .length = 3}));
  EXPECT_EQ(text.entities()[1], (MessageEntity{.type = "italic", .offset = 3, .length = 1}));
  EXPECT_EQ(text.entities()[2], (MessageEntity{.type = "code", .offset = 4, .length = 1}));
}

TEST(FormattedText, EmptyPieceAddsNoEntity) {
  FormattedText text;
  text.bold("").pre("int x;", "cpp").bold(FormattedText());
  ASSERT_EQ(text.entities().size(), 1U);
  EXPECT_EQ(text.entities()[0].language, "cpp");
  EXPECT_EQ(text.entities()[0].type, "pre");
}

TEST(FormattedText, MentionAndCustomEmoji) {
  FormattedText text;
  text.mention("Alice", User{.id = 5000000001, .is_bot = false, .first_name = "Alice"})
      .custom_emoji(kLaughing, "5368324170671202286");
  ASSERT_EQ(text.entities().size(), 2U);
  ASSERT_TRUE(text.entities()[0].user.has_value());
  EXPECT_EQ(text.entities()[0].user->id, 5000000001);
  EXPECT_EQ(text.entities()[1].offset, 5);
  EXPECT_EQ(text.entities()[1].length, 2);
  EXPECT_EQ(text.entities()[1].custom_emoji_id, "5368324170671202286");
}

TEST(Keyboards, InlineRowsWithoutTrailingEmpty) {
  const InlineKeyboardMarkup markup = InlineKeyboardBuilder()
                                          .callback("Yes", "vote:yes")
                                          .callback("No", "vote:no")
                                          .row()
                                          .url("Rules", "https://example.org/rules")
                                          .row()
                                          .build();
  ASSERT_EQ(markup.inline_keyboard.size(), 2U);
  EXPECT_EQ(markup.inline_keyboard[0].size(), 2U);
  EXPECT_EQ(markup.inline_keyboard[0][1].callback_data, "vote:no");
  EXPECT_EQ(markup.inline_keyboard[1][0].url, "https://example.org/rules");
  EXPECT_TRUE(InlineKeyboardBuilder().row().build().inline_keyboard.empty());
}

TEST(Keyboards, CallbackDataLimitChecked) {
  EXPECT_NO_THROW((void)callback_button("ok", std::string(64, 'x')));
  EXPECT_THROW((void)callback_button("long", std::string(65, 'x')), std::invalid_argument);
  EXPECT_THROW((void)callback_button("empty", ""), std::invalid_argument);
}

TEST(Keyboards, ReplyKeyboardOptions) {
  const ReplyKeyboardMarkup markup = ReplyKeyboardBuilder()
                                         .text("Menu")
                                         .row()
                                         .request_contact("Share phone")
                                         .request_location("Share place")
                                         .resize()
                                         .one_time()
                                         .placeholder("Pick one")
                                         .build();
  EXPECT_EQ(serialize_json(markup),
            R"({"keyboard":[[{"text":"Menu"}],[{"text":"Share phone","request_contact":true},)"
            R"({"text":"Share place","request_location":true}]],"resize_keyboard":true,)"
            R"("one_time_keyboard":true,"input_field_placeholder":"Pick one"})");
}

TEST(Keyboards, RemoveAndForceReply) {
  EXPECT_EQ(serialize_json(remove_keyboard()), R"({"remove_keyboard":true})");
  EXPECT_EQ(serialize_json(ReplyKeyboardRemove{}), R"({"remove_keyboard":true})");
  EXPECT_EQ(serialize_json(force_reply("Your name")),
            R"({"force_reply":true,"input_field_placeholder":"Your name"})");
}

}  // namespace
}  // namespace sluice::telegram
