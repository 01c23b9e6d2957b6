// Request structs: designated initializers, JSON, uploads, typed results.

#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sluice/telegram/keyboards.hpp>
#include <sluice/telegram/methods.hpp>
#include <sluice/telegram/request.hpp>

namespace sluice::telegram {
namespace {

static_assert(SendMessage::method_name == "sendMessage");
static_assert(std::is_same_v<SendMessage::result_type, Message>);
static_assert(std::is_same_v<GetUpdates::result_type, std::vector<Update>>);
static_assert(std::is_same_v<GetMe::result_type, User>);
static_assert(std::is_same_v<GetChat::result_type, ChatFullInfo>);
static_assert(std::is_same_v<DeleteMessage::result_type, bool>);
static_assert(std::is_same_v<EditMessageText::result_type, std::variant<Message, bool>>);
static_assert(!SendMessage::can_upload);
static_assert(SendPhoto::can_upload);
static_assert(SendMediaGroup::can_upload);
static_assert(AllMethods::size == 180);

TEST(Requests, SendMessageFromDesignatedInitializers) {
  const SendMessage request{.chat_id = 42, .text = "hi"};
  EXPECT_EQ(serialize_json(request), R"({"chat_id":42,"text":"hi"})");
}

TEST(Requests, ChatIdTakesUsername) {
  const SendMessage request{.chat_id = "@example_channel", .text = "hello", .disable_notification = true};
  EXPECT_EQ(serialize_json(request),
            R"({"chat_id":"@example_channel","text":"hello","disable_notification":true})");
  EXPECT_TRUE(request.chat_id.is_username());
  EXPECT_EQ(request.chat_id.to_string(), "@example_channel");
}

TEST(Requests, LargeChatIdKeepsDigits) {
  const ForwardMessage request{.chat_id = -1001234567890123, .from_chat_id = 5000000001, .message_id = 7};
  EXPECT_EQ(serialize_json(request),
            R"({"chat_id":-1001234567890123,"from_chat_id":5000000001,"message_id":7})");
}

TEST(Requests, NestedMarkupAndEntities) {
  const SendMessage request{
      .chat_id = 1,
      .text = "pick",
      .entities = std::vector<MessageEntity>{{.type = "bold", .offset = 0, .length = 4}},
      .reply_markup = InlineKeyboardBuilder().callback("Yes", "y").callback("No", "n").build(),
  };
  EXPECT_EQ(boost::json::parse(serialize_json(request)), boost::json::parse(R"({
      "chat_id": 1, "text": "pick",
      "entities": [{"type": "bold", "offset": 0, "length": 4}],
      "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "y"},
                                            {"text": "No", "callback_data": "n"}]]}})"));
}

TEST(Requests, UnionFieldTakesAlternative) {
  const SetChatMenuButton request{.chat_id = 3, .menu_button = MenuButtonCommands{}};
  EXPECT_EQ(serialize_json(request), R"({"chat_id":3,"menu_button":{"type":"commands"}})");
  const SetMyCommands commands{
      .commands = {{.command = "start", .description = "Start"}},
      .scope = BotCommandScopeChat{.chat_id = 9},
  };
  EXPECT_EQ(serialize_json(commands),
            R"({"commands":[{"command":"start","description":"Start"}],"scope":{"type":"chat","chat_id":9}})");
}

TEST(Requests, RequestParsesBack) {
  const SendMessage request{
      .chat_id = 1,
      .text = "x",
      .reply_markup = remove_keyboard(),
  };
  const SendMessage again = parse_json<SendMessage>(serialize_json(request));
  EXPECT_EQ(again, request);
  SendMessage incomplete;
  auto error = try_parse_json(R"({"chat_id": 1})", incomplete);
  ASSERT_TRUE(error.has_value());
  EXPECT_STREQ(error->what(), "sendMessage.text: missing required field");
}

TEST(Requests, RemoteFileIsPlainJson) {
  const SendPhoto request{.chat_id = 1, .photo = InputFile::from_url("https://example.org/a.png")};
  const SerializedRequest serialized = serialize_request(request);
  EXPECT_EQ(serialized.method, "sendPhoto");
  EXPECT_FALSE(serialized.needs_multipart());
  EXPECT_EQ(boost::json::serialize(serialized.fields),
            R"({"chat_id":1,"photo":"https://example.org/a.png"})");
}

TEST(Requests, TopLevelUploadBecomesPart) {
  const SendDocument request{
      .chat_id = 1,
      .document = InputFile::from_bytes("report.csv", "a,b\n1,2\n", "text/csv"),
      .caption = "numbers",
  };
  const SerializedRequest serialized = serialize_request(request);
  EXPECT_TRUE(serialized.needs_multipart());
  EXPECT_EQ(boost::json::serialize(serialized.fields), R"({"chat_id":1,"caption":"numbers"})");
  ASSERT_EQ(serialized.uploads.size(), 1U);
  EXPECT_EQ(serialized.uploads[0].part_name, "document");
  EXPECT_EQ(serialized.uploads[0].file.filename(), "report.csv");
  EXPECT_EQ(serialized.uploads[0].file.data(), "a,b\n1,2\n");
  EXPECT_EQ(serialized.uploads[0].file.mime_type(), "text/csv");
}

TEST(Requests, NestedUploadUsesAttach) {
  const SendMediaGroup request{
      .chat_id = 1,
      .media = {InputMediaPhoto{.media = InputFile::from_path("/tmp/one.jpg")},
                InputMediaPhoto{.media = InputFile::from_file_id("AgAD")},
                InputMediaPhoto{.media = InputFile::from_bytes("three.jpg", "\xFF\xD8\xFF")}},
  };
  const SerializedRequest serialized = serialize_request(request);
  ASSERT_EQ(serialized.uploads.size(), 2U);
  EXPECT_EQ(serialized.uploads[0].part_name, "file0");
  EXPECT_EQ(serialized.uploads[0].file.path(), "/tmp/one.jpg");
  EXPECT_EQ(serialized.uploads[0].file.filename(), "one.jpg");
  EXPECT_EQ(serialized.uploads[1].part_name, "file1");
  EXPECT_EQ(boost::json::serialize(serialized.fields),
            R"({"chat_id":1,"media":[{"type":"photo","media":"attach://file0"},)"
            R"({"type":"photo","media":"AgAD"},{"type":"photo","media":"attach://file1"}]})");
}

TEST(Requests, AttachStringParsesAsAttachment) {
  const InputFile file = InputFile::from_json_string("attach://file0");
  EXPECT_EQ(file.kind(), InputFile::Kind::Attachment);
  EXPECT_EQ(file.reference(), "file0");
  EXPECT_EQ(file.json_string(), "attach://file0");
  EXPECT_EQ(InputFile::from_json_string("https://example.org/x").kind(), InputFile::Kind::Url);
  EXPECT_EQ(InputFile::from_json_string("AgADBAAD").kind(), InputFile::Kind::FileId);
}

TEST(Requests, InputFileCopiesShareBytes) {
  const InputFile original = InputFile::from_bytes("a.bin", std::string(1000, 'z'));
  const InputFile copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_EQ(copy, original);
  EXPECT_EQ(copy.data().data(), original.data().data());
  EXPECT_NE(InputFile::from_bytes("a.bin", "1"), InputFile::from_bytes("a.bin", "2"));
}

TEST(Requests, EmptyRequestIsEmptyObject) {
  EXPECT_EQ(serialize_json(GetMe{}), "{}");
  EXPECT_EQ(serialize_request(LogOut{}).method, "logOut");
}

}  // namespace
}  // namespace sluice::telegram
