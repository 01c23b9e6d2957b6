// Bot API methods of the sandbox engine: results, validation and the
// shapes of replies compared with payloads recorded from Telegram.

#include <sluice/sandbox/engine.hpp>

#include <string>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include "support.hpp"

namespace sluice::sandbox {
namespace {

using testing::expect_same_shape;
using testing::Harness;
using testing::keys_of;
using testing::load_data;
using namespace std::chrono_literals;

constexpr std::int64_t kAlice = 100000001;
constexpr std::int64_t kBob = 100000002;
constexpr std::int64_t kGroup = -100000003;

// Returns {"inline_keyboard": [row]}. Written out because clang reads
// `array{array{...}}` as a copy of the inner array, not as nesting.
boost::json::object one_row_keyboard(boost::json::array row) {
  boost::json::array rows;
  rows.emplace_back(std::move(row));
  boost::json::object markup;
  markup["inline_keyboard"] = std::move(rows);
  return markup;
}
constexpr std::int64_t kMigratedGroup = -100000004;
constexpr std::int64_t kSupergroup = -1001000000005;
constexpr std::int64_t kChannel = -1001000000006;

class EngineMethods : public ::testing::Test {
 protected:
  EngineMethods() {
    harness.add_user(kAlice, "Alice");
    harness.add_user(kBob, "Bob");
    User blocked;
    blocked.id = 100000007;
    blocked.first_name = "Mallory";
    blocked.blocked_bot = true;
    harness.engine().add_user(blocked);
    User deleted_account;
    deleted_account.id = 100000008;
    deleted_account.first_name = "Deleted";
    deleted_account.deactivated = true;
    harness.engine().add_user(deleted_account);

    harness.engine().add_chat(group(kGroup, ChatType::group, "Team"));
    auto migrated = group(kMigratedGroup, ChatType::group, "Old team");
    migrated.migrated_to_chat_id = -1001000000009;
    harness.engine().add_chat(migrated);
    harness.engine().add_chat(group(kSupergroup, ChatType::supergroup, "Big team"));
    auto channel = group(kChannel, ChatType::channel, "News");
    channel.username = "news_channel";
    harness.engine().add_chat(channel);
  }

  static Chat group(std::int64_t id, ChatType type, std::string title) {
    Chat chat;
    chat.id = id;
    chat.type = type;
    chat.title = std::move(title);
    return chat;
  }

  /// Sends a message one second after the previous call, within the
  /// private-chat flood limit.
  testing::Parsed send(std::int64_t chat_id, std::string text, boost::json::object extra = {}) {
    harness.advance(1s);
    extra["chat_id"] = chat_id;
    extra["text"] = std::move(text);
    return harness.call("sendMessage", std::move(extra));
  }

  Harness harness;
};

TEST_F(EngineMethods, GetMeMatchesRecordedShape) {
  auto reply = harness.call("getMe");
  EXPECT_EQ(reply.status, 200u);
  ASSERT_TRUE(reply.ok());
  auto recorded = load_data("responses/ok_get_me_01.json");
  expect_same_shape(reply.body, recorded);
  for (auto const& key : keys_of(recorded.at("result"))) {
    EXPECT_TRUE(reply.result().as_object().contains(key)) << "getMe lacks " << key;
  }
  EXPECT_EQ(reply.result().at("id").as_int64(), 123456789);
  EXPECT_TRUE(reply.result().at("is_bot").as_bool());
}

TEST_F(EngineMethods, MethodNamesAreCaseInsensitive) {
  EXPECT_TRUE(harness.call("GETME").ok());
  EXPECT_TRUE(harness.call("getme").ok());
}

TEST_F(EngineMethods, WrongTokenIsUnauthorized) {
  auto reply = harness.call("getMe", {}, "123456789:wrong");
  EXPECT_EQ(reply.status, 401u);
  EXPECT_EQ(reply.body, load_data("responses/error_401_unauthorized_01.json"));
}

TEST_F(EngineMethods, UnknownMethodIsNotFound) {
  auto reply = harness.call("sendTelepathy");
  EXPECT_EQ(reply.status, 404u);
  EXPECT_EQ(reply.description(), "Not Found");
  EXPECT_EQ(reply.body.at("error_code").as_int64(), 404);
}

TEST_F(EngineMethods, UnimplementedMethodSaysSo) {
  auto reply = harness.call("sendSticker", {{"chat_id", kAlice}});
  EXPECT_EQ(reply.status, 501u);
  EXPECT_EQ(reply.description(), "Not Implemented: sluice-sandbox does not implement sendSticker");
}

TEST_F(EngineMethods, SendMessageReturnsMessage) {
  auto reply = send(kAlice, "/start now");
  ASSERT_TRUE(reply.ok()) << reply.body;
  auto const& message = reply.result();
  EXPECT_EQ(message.at("text").as_string(), "/start now");
  EXPECT_EQ(message.at("chat").at("id").as_int64(), kAlice);
  EXPECT_EQ(message.at("chat").at("type").as_string(), "private");
  EXPECT_TRUE(message.at("from").at("is_bot").as_bool());
  EXPECT_EQ(message.at("date").as_int64(), harness.engine().unix_time(harness.now()));
  ASSERT_TRUE(message.as_object().contains("entities"));
  EXPECT_EQ(message.at("entities").at(0).at("type").as_string(), "bot_command");
  // A bot's message as Telegram delivers it inside a callback query.
  auto recorded = load_data("updates/callback_query_01.json").at("callback_query").at("message");
  expect_same_shape(message, recorded);
  std::vector<std::string> order;
  for (auto const& [key, value] : message.as_object()) {
    order.emplace_back(key);
  }
  std::vector<std::string> expected = {"message_id", "from", "chat", "date", "text", "entities"};
  EXPECT_EQ(order, expected);
}

TEST_F(EngineMethods, MessageIdsFollowTelegramNumbering) {
  auto first = send(kAlice, "a").result().at("message_id").as_int64();
  auto second = send(kBob, "b").result().at("message_id").as_int64();
  EXPECT_EQ(second, first + 1) << "private chats share one sequence";
  auto in_supergroup = send(kSupergroup, "c").result().at("message_id").as_int64();
  EXPECT_EQ(in_supergroup, 1) << "a supergroup numbers its own messages";
}

TEST_F(EngineMethods, UnknownChatIsNotFound) {
  auto reply = send(42, "hi");
  EXPECT_EQ(reply.status, 400u);
  EXPECT_EQ(reply.body, load_data("responses/error_400_chat_not_found_01.json"));
  EXPECT_EQ(send(0, "x").description(), "Bad Request: chat not found");
  auto missing = harness.call("sendMessage", {{"text", "x"}});
  EXPECT_EQ(missing.description(), "Bad Request: chat_id is empty");
}

TEST_F(EngineMethods, ChatByUsername) {
  auto reply = harness.call("sendMessage", {{"chat_id", "@News_Channel"}, {"text", "hi"}});
  ASSERT_TRUE(reply.ok()) << reply.body;
  EXPECT_EQ(reply.result().at("chat").at("id").as_int64(), kChannel);
  EXPECT_TRUE(reply.result().as_object().contains("sender_chat"));
  EXPECT_FALSE(reply.result().as_object().contains("from"));
}

TEST_F(EngineMethods, BlockedUserIsForbidden) {
  auto reply = send(100000007, "hi");
  EXPECT_EQ(reply.status, 403u);
  EXPECT_EQ(reply.body, load_data("responses/error_403_bot_blocked_01.json"));
}

TEST_F(EngineMethods, DeactivatedUserIsForbidden) {
  auto reply = send(100000008, "hi");
  EXPECT_EQ(reply.status, 403u);
  EXPECT_EQ(reply.body, load_data("responses/error_403_user_deactivated_01.json"));
}

TEST_F(EngineMethods, MigratedGroupGivesNewId) {
  auto reply = send(kMigratedGroup, "hi");
  EXPECT_EQ(reply.status, 400u);
  auto recorded = load_data("responses/error_400_group_migrated_02.json");
  EXPECT_EQ(reply.description(), recorded.at("description").as_string());
  EXPECT_EQ(reply.body.at("parameters").at("migrate_to_chat_id").as_int64(), -1001000000009);
  expect_same_shape(reply.body, recorded);
  EXPECT_TRUE(send(-1001000000009, "hi again").ok()) << "the target supergroup exists";
}

TEST_F(EngineMethods, EmptyTextIsRejected) {
  EXPECT_EQ(send(kAlice, "").description(), "Bad Request: message text is empty");
  EXPECT_EQ(send(kAlice, "  \n ").description(), "Bad Request: message text is empty");
  EXPECT_EQ(send(kAlice, "<b> </b>", {{"parse_mode", "HTML"}}).description(), "Bad Request: message text is empty");
}

TEST_F(EngineMethods, TextLengthCountsUtf16) {
  EXPECT_TRUE(send(kAlice, std::string(4096, 'a')).ok());
  EXPECT_EQ(send(kAlice, std::string(4097, 'a')).description(), "Bad Request: message is too long");
  std::string emoji;
  for (int i = 0; i < 2048; ++i) {
    emoji += "\xF0\x9F\x98\x80";
  }
  EXPECT_TRUE(send(kAlice, emoji).ok()) << "2048 emoji are 4096 UTF-16 code units";
  EXPECT_EQ(send(kAlice, emoji + "a").description(), "Bad Request: message is too long");
  // Markup does not count: 4096 characters inside a bold tag fit.
  EXPECT_TRUE(send(kAlice, "<b>" + std::string(4096, 'a') + "</b>", {{"parse_mode", "HTML"}}).ok());
}

TEST_F(EngineMethods, BadMarkupCannotBeParsed) {
  auto html = send(kAlice, "<b>unclosed", {{"parse_mode", "HTML"}});
  EXPECT_EQ(html.status, 400u);
  EXPECT_EQ(html.description(), "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"");
  auto markdown = send(kAlice, "1.0", {{"parse_mode", "MarkdownV2"}});
  EXPECT_EQ(markdown.description(),
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'");
  EXPECT_EQ(send(kAlice, "x", {{"parse_mode", "BBCode"}}).description(), "Bad Request: unsupported parse_mode");
}

TEST_F(EngineMethods, MarkupErrorComesBeforeChatLookup) {
  auto reply = send(42, "1.0", {{"parse_mode", "MarkdownV2"}});
  EXPECT_EQ(reply.description(),
            "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'");
}

TEST_F(EngineMethods, ParsedMarkupGivesEntities) {
  auto reply = send(kAlice, "<b>Hi</b> <a href=\"https://example.org\">there</a>", {{"parse_mode", "html"}});
  ASSERT_TRUE(reply.ok()) << reply.body;
  EXPECT_EQ(reply.result().at("text").as_string(), "Hi there");
  auto const& entities = reply.result().at("entities").as_array();
  ASSERT_EQ(entities.size(), 2u);
  EXPECT_EQ(entities[1].at("type").as_string(), "text_link");
  EXPECT_EQ(entities[1].at("url").as_string(), "https://example.org/");
}

TEST_F(EngineMethods, InvalidUtf8IsRejected) {
  EXPECT_EQ(send(kAlice, "bad \xFF byte").description(), "Bad Request: strings must be encoded in UTF-8");
}

TEST_F(EngineMethods, ReplyEmbedsRepliedMessage) {
  auto first = send(kAlice, "question").result().at("message_id").as_int64();
  auto reply = send(kAlice, "answer", {{"reply_parameters", boost::json::object{{"message_id", first}}}});
  ASSERT_TRUE(reply.ok()) << reply.body;
  EXPECT_EQ(reply.result().at("reply_to_message").at("message_id").as_int64(), first);
  auto legacy = send(kAlice, "answer", {{"reply_to_message_id", std::to_string(first)}});
  EXPECT_TRUE(legacy.ok());
  EXPECT_EQ(send(kAlice, "x", {{"reply_to_message_id", 99999}}).description(),
            "Bad Request: message to be replied not found");
  auto tolerant = send(kAlice, "x", {{"reply_parameters", R"({"message_id":99999,"allow_sending_without_reply":true})"}});
  ASSERT_TRUE(tolerant.ok()) << tolerant.body;
  EXPECT_FALSE(tolerant.result().as_object().contains("reply_to_message"));
}

TEST_F(EngineMethods, InlineKeyboardIsShownAndChecked) {
  auto markup = one_row_keyboard(boost::json::array{boost::json::object{{"text", "Yes"}, {"callback_data", "yes"}},
                                                    boost::json::object{{"text", "Site"}, {"url", "https://example.org"}}});
  auto reply = send(kAlice, "Choose", {{"reply_markup", markup}});
  ASSERT_TRUE(reply.ok()) << reply.body;
  EXPECT_EQ(reply.result().at("reply_markup"), markup);
  auto recorded = load_data("updates/callback_query_01.json").at("callback_query").at("message");
  expect_same_shape(reply.result(), recorded);

  auto as_string = send(kAlice, "Choose", {{"reply_markup", boost::json::serialize(markup)}});
  EXPECT_TRUE(as_string.ok()) << "a serialized keyboard is accepted too";
  EXPECT_EQ(send(kAlice, "x", {{"reply_markup", "{not json"}}).description(),
            "Bad Request: can't parse reply keyboard markup JSON object");
  auto text_only = one_row_keyboard(boost::json::array{boost::json::object{{"text", "Plain"}}});
  EXPECT_EQ(send(kAlice, "x", {{"reply_markup", text_only}}).description(),
            "Bad Request: text buttons are unallowed in the inline keyboard");
  auto long_data =
      one_row_keyboard(boost::json::array{boost::json::object{{"text", "x"}, {"callback_data", std::string(65, 'd')}}});
  EXPECT_EQ(send(kAlice, "x", {{"reply_markup", long_data}}).description(), "Bad Request: BUTTON_DATA_INVALID");
  boost::json::object reply_keyboard{{"remove_keyboard", true}};
  auto removed = send(kAlice, "x", {{"reply_markup", reply_keyboard}});
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(removed.result().as_object().contains("reply_markup"));
}

TEST_F(EngineMethods, EditMessageTextUpdatesMessage) {
  auto id = send(kAlice, "draft").result().at("message_id").as_int64();
  harness.advance(5s);
  auto reply = harness.call("editMessageText", {{"chat_id", kAlice}, {"message_id", id}, {"text", "final"}});
  ASSERT_TRUE(reply.ok()) << reply.body;
  EXPECT_EQ(reply.result().at("text").as_string(), "final");
  EXPECT_EQ(reply.result().at("edit_date").as_int64(), harness.engine().unix_time(harness.now()));
  EXPECT_LT(reply.result().at("date").as_int64(), reply.result().at("edit_date").as_int64());
  std::vector<std::string> order;
  for (auto const& [key, value] : reply.result().as_object()) {
    order.emplace_back(key);
  }
  std::vector<std::string> expected = {"message_id", "from", "chat", "date", "edit_date", "text"};
  EXPECT_EQ(order, expected);
  auto recorded = load_data("updates/edited_message_01.json").at("edited_message");
  expect_same_shape(reply.result(), recorded);
}

TEST_F(EngineMethods, EditMessageTextErrors) {
  auto id = send(kAlice, "same").result().at("message_id").as_int64();
  auto unchanged = harness.call("editMessageText", {{"chat_id", kAlice}, {"message_id", id}, {"text", "same"}});
  EXPECT_EQ(unchanged.status, 400u);
  EXPECT_TRUE(unchanged.description().starts_with("Bad Request: message is not modified"));
  auto recorded = load_data("responses/error_400_message_not_modified_01.json");
  expect_same_shape(unchanged.body, recorded);
  auto missing = harness.call("editMessageText", {{"chat_id", kAlice}, {"message_id", 9999}, {"text", "x"}});
  EXPECT_EQ(missing.description(), "Bad Request: message to edit not found");
  auto incoming = harness.engine().push_user_message(kAlice, 0, "mine", harness.now());
  auto foreign = harness.call("editMessageText", {{"chat_id", kAlice}, {"message_id", incoming}, {"text", "x"}});
  EXPECT_EQ(foreign.description(), "Bad Request: message can't be edited");
}

TEST_F(EngineMethods, DeleteMessageRemovesIt) {
  auto id = send(kAlice, "oops").result().at("message_id").as_int64();
  auto reply = harness.call("deleteMessage", {{"chat_id", kAlice}, {"message_id", id}});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply.body, load_data("responses/ok_true_01.json"));
  auto again = harness.call("deleteMessage", {{"chat_id", kAlice}, {"message_id", id}});
  EXPECT_EQ(again.description(), "Bad Request: message to delete not found");
}

TEST_F(EngineMethods, DeleteOthersMessageInGroupNeedsAdmin) {
  harness.engine().add_user([] {
    User user;
    user.id = 100000010;
    user.first_name = "Member";
    return user;
  }());
  auto incoming = harness.engine().push_user_message(100000010, kGroup, "hello", harness.now());
  auto reply = harness.call("deleteMessage", {{"chat_id", kGroup}, {"message_id", incoming}});
  EXPECT_EQ(reply.description(), "Bad Request: message can't be deleted");
}

TEST_F(EngineMethods, AnswerCallbackQueryOnce) {
  auto markup = one_row_keyboard(boost::json::array{boost::json::object{{"text", "Go"}, {"callback_data", "go"}}});
  auto id = send(kAlice, "Press", {{"reply_markup", markup}}).result().at("message_id").as_int64();
  auto query_id = harness.engine().push_callback_query(kAlice, 0, id, std::nullopt, harness.now());
  auto first = harness.call("answerCallbackQuery", {{"callback_query_id", query_id}, {"text", "Done"}});
  ASSERT_TRUE(first.ok()) << first.body;
  EXPECT_EQ(first.body, load_data("responses/ok_true_01.json"));
  auto second = harness.call("answerCallbackQuery", {{"callback_query_id", query_id}});
  EXPECT_EQ(second.description(), "Bad Request: query is too old and response timeout expired or query ID is invalid");
  auto unknown = harness.call("answerCallbackQuery", {{"callback_query_id", "123"}});
  EXPECT_EQ(unknown.status, 400u);
}

TEST_F(EngineMethods, SendChatActionChecksAction) {
  EXPECT_TRUE(harness.call("sendChatAction", {{"chat_id", kAlice}, {"action", "typing"}}).ok());
  auto bad = harness.call("sendChatAction", {{"chat_id", kAlice}, {"action", "dancing"}});
  EXPECT_EQ(bad.description(), "Bad Request: wrong parameter action in request");
  auto blocked = harness.call("sendChatAction", {{"chat_id", 100000007}, {"action", "typing"}});
  EXPECT_EQ(blocked.status, 403u);
}

TEST_F(EngineMethods, CopyMessageReturnsMessageId) {
  auto id = send(kAlice, "copy me").result().at("message_id").as_int64();
  auto reply = harness.call("copyMessage", {{"chat_id", kBob}, {"from_chat_id", kAlice}, {"message_id", id}});
  ASSERT_TRUE(reply.ok()) << reply.body;
  EXPECT_EQ(keys_of(reply.result()), std::vector<std::string>{"message_id"});
  auto missing = harness.call("copyMessage", {{"chat_id", kBob}, {"from_chat_id", kAlice}, {"message_id", 999}});
  EXPECT_EQ(missing.description(), "Bad Request: message to copy not found");
  auto calls = harness.engine().calls_json("copyMessage", kBob);
  EXPECT_EQ(calls.size(), 2u);
}

TEST_F(EngineMethods, ForwardMessageHasOrigin) {
  auto incoming = harness.engine().push_user_message(kAlice, 0, "forward me", harness.now());
  auto reply = harness.call("forwardMessage", {{"chat_id", kBob}, {"from_chat_id", kAlice}, {"message_id", incoming}});
  ASSERT_TRUE(reply.ok()) << reply.body;
  auto const& message = reply.result();
  EXPECT_EQ(message.at("text").as_string(), "forward me");
  EXPECT_EQ(message.at("forward_origin").at("type").as_string(), "user");
  EXPECT_EQ(message.at("forward_origin").at("sender_user").at("id").as_int64(), kAlice);
  auto recorded = load_data("updates/message_forward_origin_user_01.json").at("message");
  expect_same_shape(message.at("forward_origin"), recorded.at("forward_origin"));
  auto missing = harness.call("forwardMessage", {{"chat_id", kBob}, {"from_chat_id", kAlice}, {"message_id", 999}});
  EXPECT_EQ(missing.description(), "Bad Request: message to forward not found");
}

std::string tiny_png(std::uint32_t width, std::uint32_t height) {
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  for (auto value : {width, height}) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      png += static_cast<char>((value >> shift) & 0xFF);
    }
  }
  png += std::string("\x08\x02\0\0\0", 5);
  png += std::string(100, 'x');
  return png;
}

TEST_F(EngineMethods, SendPhotoUploadAndReuse) {
  ApiRequest request;
  request.token = harness.engine().bot().token;
  request.method = "sendPhoto";
  request.params = {{"chat_id", std::to_string(kAlice)}, {"caption", "<b>cat</b>"}, {"parse_mode", "HTML"}};
  request.files["photo"] = UploadedFile{.filename = "cat.png", .content_type = "image/png", .data = tiny_png(1600, 1200)};
  auto outcome = harness.engine().handle(std::move(request), harness.now());
  auto reply = testing::parse_reply(std::get<ApiReply>(outcome));
  ASSERT_TRUE(reply.ok()) << reply.body;
  auto const& sizes = reply.result().at("photo").as_array();
  ASSERT_EQ(sizes.size(), 4u);
  EXPECT_EQ(sizes[0].at("width").as_int64(), 90);
  EXPECT_EQ(sizes[3].at("width").as_int64(), 1280);
  EXPECT_EQ(sizes[3].at("height").as_int64(), 960);
  EXPECT_EQ(reply.result().at("caption").as_string(), "cat");
  EXPECT_EQ(reply.result().at("caption_entities").at(0).at("type").as_string(), "bold");
  auto recorded = load_data("updates/message_photo_02.json").at("message");
  expect_same_shape(reply.result(), recorded);

  auto file_id = std::string(sizes[3].at("file_id").as_string());
  auto again = harness.call("sendPhoto", {{"chat_id", kBob}, {"photo", file_id}});
  ASSERT_TRUE(again.ok()) << again.body;
  EXPECT_EQ(again.result().at("photo").at(0).at("file_id").as_string(), file_id);
  auto wrong = harness.call("sendPhoto", {{"chat_id", kBob}, {"photo", "AgACnope"}});
  EXPECT_EQ(wrong.description(), "Bad Request: wrong file identifier/HTTP URL specified");
  auto as_document = harness.call("sendDocument", {{"chat_id", kBob}, {"document", file_id}});
  EXPECT_EQ(as_document.description(), "Bad Request: can't use file of type Photo as Document");
  EXPECT_EQ(harness.call("sendPhoto", {{"chat_id", kBob}}).description(), "Bad Request: there is no photo in the request");
}

TEST_F(EngineMethods, SendPhotoRejectsNonImage) {
  ApiRequest request;
  request.token = harness.engine().bot().token;
  request.method = "sendPhoto";
  request.params = {{"chat_id", kAlice}};
  request.files["photo"] = UploadedFile{.filename = "x.png", .content_type = "image/png", .data = "not an image"};
  auto reply = testing::parse_reply(std::get<ApiReply>(harness.engine().handle(std::move(request), harness.now())));
  EXPECT_EQ(reply.description(), "Bad Request: IMAGE_PROCESS_FAILED");
}

TEST_F(EngineMethods, SendDocumentUpload) {
  ApiRequest request;
  request.token = harness.engine().bot().token;
  request.method = "sendDocument";
  request.params = {{"chat_id", kAlice}};
  request.files["document"] = UploadedFile{.filename = "report.pdf", .content_type = "", .data = "%PDF-1.4 ..."};
  auto reply = testing::parse_reply(std::get<ApiReply>(harness.engine().handle(std::move(request), harness.now())));
  ASSERT_TRUE(reply.ok()) << reply.body;
  auto const& document = reply.result().at("document");
  EXPECT_EQ(document.at("file_name").as_string(), "report.pdf");
  EXPECT_EQ(document.at("mime_type").as_string(), "application/pdf");
  EXPECT_EQ(document.at("file_size").as_int64(), 12);
  auto recorded = load_data("updates/message_document_01.json").at("message");
  expect_same_shape(reply.result(), recorded);
  auto file_id = std::string(document.at("file_id").as_string());
  auto again = harness.call("sendDocument", {{"chat_id", kBob}, {"document", file_id}, {"caption", "again"}});
  ASSERT_TRUE(again.ok()) << again.body;
  EXPECT_EQ(again.result().at("document").at("file_unique_id"), document.at("file_unique_id"));
}

TEST_F(EngineMethods, GetChatMatchesRecordedShape) {
  auto reply = harness.call("getChat", {{"chat_id", kSupergroup}});
  ASSERT_TRUE(reply.ok()) << reply.body;
  EXPECT_EQ(reply.result().at("type").as_string(), "supergroup");
  expect_same_shape(reply.body, load_data("responses/ok_get_chat_01.json"));
  auto private_chat = harness.call("getChat", {{"chat_id", kAlice}});
  ASSERT_TRUE(private_chat.ok());
  EXPECT_EQ(private_chat.result().at("first_name").as_string(), "Alice");
  EXPECT_EQ(harness.call("getChat", {{"chat_id", 5}}).description(), "Bad Request: chat not found");
}

TEST_F(EngineMethods, SetMyCommandsStoresByScope) {
  boost::json::array commands{boost::json::object{{"command", "start"}, {"description", "Start"}},
                              boost::json::object{{"command", "help"}, {"description", "Help"}}};
  auto set = harness.call("setMyCommands", {{"commands", commands}});
  ASSERT_TRUE(set.ok()) << set.body;
  EXPECT_EQ(set.body, load_data("responses/ok_true_01.json"));
  EXPECT_EQ(harness.call("getMyCommands").result(), commands);
  auto scoped = harness.call("getMyCommands", {{"scope", R"({"type":"all_private_chats"})"}});
  EXPECT_TRUE(scoped.result().as_array().empty());
  boost::json::array bad{boost::json::object{{"command", "Bad Command"}, {"description", "x"}}};
  EXPECT_EQ(harness.call("setMyCommands", {{"commands", bad}}).description(), "Bad Request: BOT_COMMAND_INVALID");
  EXPECT_TRUE(harness.call("deleteMyCommands").ok());
  EXPECT_TRUE(harness.call("getMyCommands").result().as_array().empty());
}

TEST_F(EngineMethods, FloodLimitAnswers429) {
  boost::json::object params{{"chat_id", kAlice}, {"text", "burst"}};
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(harness.call("sendMessage", params).ok()) << "send " << i;
  }
  auto limited = harness.call("sendMessage", params);
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(limited.description(), "Too Many Requests: retry after 1");
  EXPECT_EQ(limited.body.at("parameters").at("retry_after").as_int64(), 1);
  expect_same_shape(limited.body, load_data("responses/error_429_retry_after_01.json"));
  EXPECT_EQ(keys_of(limited.body), keys_of(load_data("responses/error_429_retry_after_01.json")));
  harness.advance(1s);
  EXPECT_TRUE(harness.call("sendMessage", params).ok());
  EXPECT_EQ(harness.engine().stats().responses_429, 1u);
}

TEST_F(EngineMethods, FloodLimitForGroupsIsPerMinute) {
  boost::json::object params{{"chat_id", kGroup}, {"text", "burst"}};
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(harness.call("sendMessage", params).ok()) << "send " << i;
  }
  auto limited = harness.call("sendMessage", params);
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(limited.body.at("parameters").at("retry_after").as_int64(), 3);
}

TEST_F(EngineMethods, ConfigTurnsFloodOff) {
  harness.engine().apply_config(boost::json::object{{"flood", boost::json::object{{"enabled", false}}}});
  boost::json::object params{{"chat_id", kAlice}, {"text", "fast"}};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(harness.call("sendMessage", params).ok()) << "send " << i;
  }
  EXPECT_THROW(harness.engine().apply_config(boost::json::object{{"floods", 1}}), std::invalid_argument);
}

TEST_F(EngineMethods, CallsAreRecorded) {
  send(kAlice, "one");
  send(kBob, "two");
  harness.call("getMe");
  send(42, "nobody");
  auto all = harness.engine().calls_json(std::nullopt, std::nullopt);
  EXPECT_EQ(all.size(), 4u);
  auto to_alice = harness.engine().calls_json("sendmessage", kAlice);
  ASSERT_EQ(to_alice.size(), 1u);
  EXPECT_EQ(to_alice[0].at("params").at("text").as_string(), "one");
  EXPECT_TRUE(to_alice[0].at("ok").as_bool());
  auto failed = harness.engine().calls_json("sendMessage", std::nullopt);
  ASSERT_EQ(failed.size(), 3u);
  EXPECT_FALSE(failed[2].at("ok").as_bool());
  EXPECT_EQ(failed[2].at("description").as_string(), "Bad Request: chat not found");
  EXPECT_EQ(harness.engine().stats().calls_by_method.at("sendMessage"), 3u);
}

TEST_F(EngineMethods, OrderViolationsAreCounted) {
  auto first = harness.engine().push_user_message(kAlice, 0, "1", harness.now());
  auto second = harness.engine().push_user_message(kAlice, 0, "2", harness.now());
  EXPECT_TRUE(send(kAlice, "re 2", {{"reply_to_message_id", second}}).ok());
  EXPECT_TRUE(send(kAlice, "re 1", {{"reply_to_message_id", first}}).ok());
  auto const& stats = harness.engine().stats();
  EXPECT_EQ(stats.order_violations, 1u);
  ASSERT_EQ(stats.order_violation_samples.size(), 1u);
  EXPECT_EQ(stats.order_violation_samples[0].message_id, first);
  EXPECT_EQ(stats.order_violation_samples[0].after_message_id, second);
}

TEST_F(EngineMethods, ConditionsReadCounters) {
  send(kAlice, "one");
  auto& engine = harness.engine();
  EXPECT_TRUE(engine.evaluate_condition("calls.sendMessage>=1"));
  EXPECT_TRUE(engine.evaluate_condition("calls.SENDMESSAGE==1"));
  EXPECT_FALSE(engine.evaluate_condition("calls>1"));
  EXPECT_TRUE(engine.evaluate_condition("all_confirmed"));
  EXPECT_TRUE(engine.evaluate_condition("errors.400==0"));
  EXPECT_THROW(engine.evaluate_condition("nonsense"), std::invalid_argument);
  EXPECT_THROW(engine.evaluate_condition("widgets>=1"), std::invalid_argument);
  EXPECT_THROW(engine.evaluate_condition("calls>=x"), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::sandbox
