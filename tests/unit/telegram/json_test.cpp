// Reading rejects malformed input with an error that names the path, and
// never crashes on hostile input.

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include <boost/json/parse.hpp>

#include <sluice/telegram/json.hpp>
#include <sluice/telegram/types.hpp>

namespace sluice::telegram {
namespace {

constexpr std::string_view kMinimalMessage =
    R"({"update_id": 1, "message": {"message_id": 2, "date": 3,
        "chat": {"id": 4, "type": "private"}}})";

// Returns the what() of the ParseError that parsing `text` as T raises, or
// "no error".
template <class T>
std::string error_of(std::string_view text) {
  T out{};
  auto error = try_parse_json(text, out);
  return error ? std::string(error->what()) : std::string("no error");
}

TEST(JsonRead, MinimalUpdateParses) {
  const Update update = parse_json<Update>(kMinimalMessage);
  EXPECT_EQ(update.update_id, 1);
  ASSERT_TRUE(update.message.has_value());
  EXPECT_EQ(update.message->chat.id, 4);
  EXPECT_FALSE(update.message->from.has_value());
  EXPECT_FALSE(update.message->text.has_value());
}

TEST(JsonRead, WrongTypeNamesPath) {
  EXPECT_EQ(error_of<Update>(R"({"update_id": 1, "message": {"message_id": 2, "date": 3,
                                 "chat": {"id": "4", "type": "private"}}})"),
            "Update.message.chat.id: expected integer, got string");
}

TEST(JsonRead, MissingFieldNamesPath) {
  EXPECT_EQ(error_of<Update>(R"({"update_id": 1, "message": {"message_id": 2, "date": 3,
                                 "chat": {"type": "private"}}})"),
            "Update.message.chat.id: missing required field");
  EXPECT_EQ(error_of<Update>(R"({"message": null})"), "Update.update_id: missing required field");
}

TEST(JsonRead, ArrayIndexInPath) {
  EXPECT_EQ(error_of<Update>(R"({"update_id": 1, "message": {"message_id": 2, "date": 3,
                                 "chat": {"id": 4, "type": "private"}, "text": "hi",
                                 "entities": [{"type": "bold", "offset": 0, "length": 1},
                                              {"type": "bold", "offset": 0.5, "length": 1}]}})"),
            "Update.message.entities[1].offset: expected integer, got non-integer number");
}

TEST(JsonRead, IntegralDoubleIsNotInteger) {
  EXPECT_EQ(error_of<User>(R"({"id": 5.0, "is_bot": false, "first_name": "A"})"),
            "User.id: expected integer, got non-integer number");
}

TEST(JsonRead, IntegerOutOfRangeRejected) {
  EXPECT_EQ(error_of<User>(R"({"id": 18446744073709551615, "is_bot": false, "first_name": "A"})"),
            "User.id: integer 18446744073709551615 does not fit in int64");
}

TEST(JsonRead, IdsAbove32BitsSurvive) {
  const User user = parse_json<User>(
      R"({"id": 9007199254740993, "is_bot": false, "first_name": "A"})");
  EXPECT_EQ(user.id, 9007199254740993);  // not representable as a double
  const Chat chat = parse_json<Chat>(R"({"id": -1009876543210, "type": "supergroup"})");
  EXPECT_EQ(chat.id, -1009876543210);
  EXPECT_EQ(serialize_json(chat), R"({"id":-1009876543210,"type":"supergroup"})");
}

TEST(JsonRead, UnknownFieldsIgnored) {
  const User user = parse_json<User>(
      R"({"future_field": {"deep": [1, 2, {"x": null}]}, "id": 7, "is_bot": true,
          "first_name": "Bot", "another_new_flag": true})");
  EXPECT_EQ(user.id, 7);
  EXPECT_TRUE(user.is_bot);
  EXPECT_EQ(serialize_json(user), R"({"id":7,"is_bot":true,"first_name":"Bot"})");
}

TEST(JsonRead, AbsentAndFalseAreDistinct) {
  const User absent = parse_json<User>(R"({"id": 1, "is_bot": false, "first_name": "A"})");
  const User explicit_false =
      parse_json<User>(R"({"id": 1, "is_bot": false, "first_name": "A", "is_premium": false})");
  EXPECT_FALSE(absent.is_premium.has_value());
  ASSERT_TRUE(explicit_false.is_premium.has_value());
  EXPECT_FALSE(*explicit_false.is_premium);
  EXPECT_NE(absent, explicit_false);
  EXPECT_EQ(serialize_json(explicit_false),
            R"({"id":1,"is_bot":false,"first_name":"A","is_premium":false})");
}

TEST(JsonRead, NullForRequiredFieldRejected) {
  EXPECT_EQ(error_of<User>(R"({"id": null, "is_bot": false, "first_name": "A"})"),
            "User.id: expected integer, got null");
}

TEST(JsonRead, UnknownChatMemberStatusKept) {
  constexpr std::string_view kText = R"({
      "chat": {"id": -100, "type": "supergroup"},
      "from": {"id": 1, "is_bot": false, "first_name": "A"},
      "date": 5,
      "old_chat_member": {"status": "member", "user": {"id": 2, "is_bot": false, "first_name": "B"}},
      "new_chat_member": {"status": "guest", "user": {"id": 2, "is_bot": false, "first_name": "B"},
                          "guest_until": 99}})";
  const ChatMemberUpdated updated = parse_json<ChatMemberUpdated>(kText);
  ASSERT_TRUE(std::holds_alternative<UnknownVariant>(updated.new_chat_member));
  const auto& unknown = std::get<UnknownVariant>(updated.new_chat_member);
  EXPECT_EQ(unknown.discriminator, "guest");
  EXPECT_EQ(boost::json::parse(unknown.json).at("guest_until").as_int64(), 99);
  EXPECT_TRUE(std::holds_alternative<ChatMemberMember>(updated.old_chat_member));

  // Written back, the unknown member is the original object.
  const boost::json::value written = to_json(updated);
  EXPECT_EQ(written.at("new_chat_member"), boost::json::parse(unknown.json));
  EXPECT_EQ(parse_json<ChatMemberUpdated>(serialize_json(updated)), updated);
}

TEST(JsonRead, MissingDiscriminatorNamesPath) {
  EXPECT_EQ(error_of<ReactionType>(R"({"emoji": "x"})"), "ReactionType.type: missing required field");
  EXPECT_EQ(error_of<ReactionType>(R"({"type": 3})"), "ReactionType.type: expected string, got integer");
}

TEST(JsonRead, UnknownInputMediaTypeRejected) {
  // Unions the bot sends have no UnknownVariant: an unknown value is an error.
  EXPECT_EQ(error_of<InputMedia>(R"({"type": "hologram", "media": "x"})"),
            "InputMedia.type: unknown value \"hologram\"");
}

TEST(JsonRead, SharedTypeValueUsesKeys) {
  // InlineQueryResultAudio and InlineQueryResultCachedAudio both have type "audio".
  const auto cached = parse_json<InlineQueryResult>(
      R"({"type": "audio", "id": "1", "audio_file_id": "AwAD"})");
  EXPECT_TRUE(std::holds_alternative<InlineQueryResultCachedAudio>(cached));
  const auto linked = parse_json<InlineQueryResult>(
      R"({"type": "audio", "id": "1", "audio_url": "https://example.org/a.mp3", "title": "A"})");
  EXPECT_TRUE(std::holds_alternative<InlineQueryResultAudio>(linked));
}

TEST(JsonRead, InaccessibleMessageByZeroDate) {
  const auto gone = parse_json<MaybeInaccessibleMessage>(
      R"({"chat": {"id": 1, "type": "private"}, "message_id": 5, "date": 0})");
  EXPECT_TRUE(std::holds_alternative<InaccessibleMessage>(gone));
  const auto present = parse_json<MaybeInaccessibleMessage>(
      R"({"chat": {"id": 1, "type": "private"}, "message_id": 5, "date": 1700000000})");
  ASSERT_TRUE(std::holds_alternative<Message>(present));
  EXPECT_EQ(std::get<Message>(present).date, 1700000000);
}

TEST(JsonRead, RichTextMixesStringsAndObjects) {
  const auto text = parse_json<RichText>(
      R"([ "plain ", {"type": "bold", "text": ["a", {"type": "italic", "text": "b"}]},
           {"type": "sparkle", "text": "new kind"} ])");
  ASSERT_TRUE(std::holds_alternative<std::vector<RichText>>(text));
  const auto& parts = std::get<std::vector<RichText>>(text);
  ASSERT_EQ(parts.size(), 3U);
  EXPECT_EQ(std::get<std::string>(parts[0]), "plain ");
  const auto& bold = std::get<RichTextBold>(parts[1]);
  ASSERT_TRUE(bold.text.has_value());
  EXPECT_TRUE(std::holds_alternative<std::vector<RichText>>(*bold.text));
  EXPECT_TRUE(std::holds_alternative<UnknownVariant>(parts[2]));
  EXPECT_EQ(parse_json<RichText>(serialize_json(text)), text);
}

TEST(JsonRead, ReplyMarkupByKeys) {
  const auto inline_markup = parse_json<ReplyMarkup>(R"({"inline_keyboard": [[{"text": "a", "url": "https://example.org"}]]})");
  EXPECT_TRUE(std::holds_alternative<InlineKeyboardMarkup>(inline_markup));
  const auto remove = parse_json<ReplyMarkup>(R"({"remove_keyboard": true})");
  EXPECT_TRUE(std::holds_alternative<ReplyKeyboardRemove>(remove));
  EXPECT_EQ(error_of<ReplyMarkup>(R"({"selective": true})"),
            "ReplyMarkup: none of the keys inline_keyboard, keyboard, remove_keyboard, force_reply is present");
}

// -- malformed and hostile input ------------------------------------------------

TEST(JsonMalformed, TruncatedTextRejected) {
  const std::string text(kMinimalMessage);
  for (std::size_t length = 0; length < text.size(); ++length) {
    const std::string error = error_of<Update>(text.substr(0, length));
    EXPECT_TRUE(error.starts_with("Update: invalid JSON at byte ")) << length << ": " << error;
  }
}

TEST(JsonMalformed, TrailingDataRejected) {
  EXPECT_EQ(error_of<Update>(R"({"update_id": 1} {"update_id": 2})"),
            "Update: invalid JSON at byte 17: extra data");
}

TEST(JsonMalformed, NotAnObjectRejected) {
  EXPECT_EQ(error_of<Update>("[1, 2]"), "Update: expected object, got array");
  EXPECT_EQ(error_of<Update>("42"), "Update: expected object, got integer");
  EXPECT_EQ(error_of<Update>("null"), "Update: expected object, got null");
}

TEST(JsonMalformed, DeepNestingRejected) {
  const std::string deep_arrays = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_TRUE(error_of<Update>(deep_arrays).starts_with("Update: invalid JSON at byte 128: "))
      << error_of<Update>(deep_arrays);

  std::string deep_objects;
  for (int i = 0; i < 10000; ++i) {
    deep_objects += R"({"reply_to_message":)";
  }
  deep_objects += "null" + std::string(10000, '}');
  EXPECT_TRUE(error_of<Message>(deep_objects).starts_with("Message: invalid JSON at byte "));
}

TEST(JsonMalformed, DeepButAllowedNestingParses) {
  // Replies nested 40 deep stay within kMaxJsonDepth and parse.
  std::string text;
  constexpr int kLevels = 40;
  for (int i = 0; i < kLevels; ++i) {
    text += R"({"message_id": 1, "date": 2, "chat": {"id": 3, "type": "private"}, "reply_to_message": )";
  }
  text += "null" + std::string(kLevels, '}');
  const Message message = parse_json<Message>(text);
  int depth = 1;
  for (const Message* current = &message; current->reply_to_message; current = &*current->reply_to_message) {
    ++depth;
  }
  EXPECT_EQ(depth, kLevels);
  EXPECT_EQ(parse_json<Message>(serialize_json(message)), message);
}

TEST(JsonMalformed, InvalidUtf8Rejected) {
  const std::string bad = "{\"update_id\": 1, \"message\": {\"message_id\": 2, \"date\": 3, "
                          "\"chat\": {\"id\": 4, \"type\": \"private\"}, \"text\": \"\xC3\x28\"}}";
  EXPECT_TRUE(error_of<Update>(bad).starts_with("Update: invalid JSON at byte ")) << error_of<Update>(bad);
  const std::string lone_surrogate = R"({"id": 1, "is_bot": false, "first_name": "\ud800"})";
  EXPECT_TRUE(error_of<User>(lone_surrogate).starts_with("User: invalid JSON")) << error_of<User>(lone_surrogate);
}

TEST(JsonMalformed, HugeStringsHandled) {
  const std::string big(10 * 1024 * 1024, 'x');
  const std::string text = R"({"id": 1, "is_bot": false, "first_name": ")" + big + R"("})";
  const User user = parse_json<User>(text);
  EXPECT_EQ(user.first_name.size(), big.size());

  // A huge unknown discriminator value is quoted only in part.
  const std::string reaction = R"({"type": ")" + big + R"("})";
  const auto kept = parse_json<ReactionType>(reaction);
  ASSERT_TRUE(std::holds_alternative<UnknownVariant>(kept));
  const std::string error = error_of<InputMedia>(R"({"type": ")" + big + R"(", "media": "x"})");
  EXPECT_LT(error.size(), 200U);
}

TEST(JsonMalformed, NumbersOfEveryKindInFloatField) {
  const Location location = parse_json<Location>(R"({"latitude": 1, "longitude": -2.5e1})");
  EXPECT_DOUBLE_EQ(location.latitude, 1.0);
  EXPECT_DOUBLE_EQ(location.longitude, -25.0);
  EXPECT_EQ(error_of<Location>(R"({"latitude": "1", "longitude": 0})"),
            "Location.latitude: expected number, got string");
}

TEST(JsonWrite, UploadInPlainJsonThrows) {
  InputMediaPhoto photo{.media = InputFile::from_bytes("a.jpg", "\xFF\xD8")};
  EXPECT_THROW((void)to_json(photo), std::invalid_argument);
  photo.media = InputFile::from_file_id("AgAD");
  EXPECT_EQ(serialize_json(photo), R"({"type":"photo","media":"AgAD"})");
}

}  // namespace
}  // namespace sluice::telegram
