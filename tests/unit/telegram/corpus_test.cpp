// The real updates and replies in tests/data parse into typed values and
// survive a write and a second read.

#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sluice/telegram/json.hpp>
#include <sluice/telegram/methods.hpp>
#include <sluice/telegram/response.hpp>
#include <sluice/telegram/types.hpp>
#include <sluice/telegram/utf16.hpp>

#include "test_files.hpp"

namespace sluice::telegram {
namespace {

using testing::json_files;
using testing::read_file;

// The source of this file redacted the shipping address down to "{}", so
// the required ShippingAddress fields are missing; the reader must say so.
constexpr std::string_view kRedactedShippingFile = "message_successful_payment_01.json";

// True when every member of `written` appears in `original` with an equal
// value. Keys only in `original` are fields the spec does not know, or
// explicit nulls, which reading drops. Fills `where` on a mismatch.
bool is_json_subset(const boost::json::value& written, const boost::json::value& original,
                    const std::string& path, std::string& where) {
  if (written.is_object()) {
    if (!original.is_object()) {
      where = path + " is not an object in the input";
      return false;
    }
    for (const auto& member : written.get_object()) {
      const auto* counterpart = original.get_object().if_contains(member.key());
      if (counterpart == nullptr) {
        where = path + "." + std::string(member.key()) + " was not in the input";
        return false;
      }
      if (!is_json_subset(member.value(), *counterpart, path + "." + std::string(member.key()),
                          where)) {
        return false;
      }
    }
    return true;
  }
  if (written.is_array()) {
    if (!original.is_array() || original.get_array().size() != written.get_array().size()) {
      where = path + " has another length in the input";
      return false;
    }
    for (std::size_t i = 0; i < written.get_array().size(); ++i) {
      if (!is_json_subset(written.get_array()[i], original.get_array()[i],
                          path + "[" + std::to_string(i) + "]", where)) {
        return false;
      }
    }
    return true;
  }
  if (written != original) {
    where = path + ": wrote " + boost::json::serialize(written) + ", input had " +
            boost::json::serialize(original);
    return false;
  }
  return true;
}

Update parse_update_file(const std::string& name) {
  return parse_json<Update>(read_file(testing::data_dir() / "updates" / name));
}

TEST(UpdateCorpus, EveryFileParses) {
  const auto files = json_files("updates");
  ASSERT_EQ(files.size(), 88U);
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    Update update;
    auto error = try_parse_json(read_file(file), update);
    if (file.filename() == kRedactedShippingFile) {
      ASSERT_TRUE(error.has_value());
      EXPECT_EQ(error->what(), std::string("Update.message.successful_payment.order_info."
                                           "shipping_address.country_code: missing required field"));
      continue;
    }
    EXPECT_FALSE(error.has_value()) << error->what();
    EXPECT_GT(update.update_id + 1, 0);
  }
}

TEST(UpdateCorpus, RoundTripKeepsValue) {
  for (const auto& file : json_files("updates")) {
    if (file.filename() == kRedactedShippingFile) {
      continue;
    }
    SCOPED_TRACE(file.filename().string());
    const Update first = parse_json<Update>(read_file(file));
    const std::string written = serialize_json(first);
    const Update second = parse_json<Update>(written);
    EXPECT_TRUE(first == second) << written;
  }
}

TEST(UpdateCorpus, WrittenJsonMatchesInput) {
  for (const auto& file : json_files("updates")) {
    if (file.filename() == kRedactedShippingFile) {
      continue;
    }
    SCOPED_TRACE(file.filename().string());
    const std::string text = read_file(file);
    const boost::json::value original = boost::json::parse(text);
    const boost::json::value written = to_json(parse_json<Update>(text));
    std::string where;
    EXPECT_TRUE(is_json_subset(written, original, "Update", where)) << where;
  }
}

TEST(UpdateCorpus, IdsAbove32BitsSurvive) {
  const Update update = parse_update_file("message_video_chat_participants_invited_01.json");
  ASSERT_TRUE(update.message.has_value());
  ASSERT_TRUE(update.message->from.has_value());
  EXPECT_EQ(update.message->from->id, 1000000000000001);
  EXPECT_EQ(update.message->chat.id, -1001000000007);
  ASSERT_TRUE(update.message->video_chat_participants_invited.has_value());
  ASSERT_FALSE(update.message->video_chat_participants_invited->users.empty());
  EXPECT_EQ(update.message->video_chat_participants_invited->users.at(0).id, 100000000000001);
}

TEST(UpdateCorpus, ChatMemberStatusPicksAlternative) {
  const Update update = parse_update_file("chat_member_01.json");
  ASSERT_TRUE(update.chat_member.has_value());
  const ChatMember& now = update.chat_member->new_chat_member;
  const ChatMember& before = update.chat_member->old_chat_member;
  ASSERT_TRUE(std::holds_alternative<ChatMemberBanned>(now));
  EXPECT_TRUE(std::holds_alternative<ChatMemberLeft>(before));
  EXPECT_EQ(std::get<ChatMemberBanned>(now).user.id, 10001);
  EXPECT_EQ(ChatMemberBanned::status, "kicked");
  // Explicit nulls for optional fields read as absent.
  EXPECT_FALSE(update.chat_member->from.last_name.has_value());
}

TEST(UpdateCorpus, UnknownUpdateKindKeepsId) {
  const Update update = parse_update_file("unknown_update_kind_02.json");
  EXPECT_EQ(update.update_id, 144011148);
  EXPECT_FALSE(update.message.has_value());
  EXPECT_TRUE(to_json(update) == boost::json::parse(R"({"update_id":144011148})"));
}

TEST(UpdateCorpus, ReplyToMessageIsNested) {
  const Update update = parse_update_file("message_reply_01.json");
  ASSERT_TRUE(update.message.has_value());
  ASSERT_TRUE(update.message->reply_to_message.has_value());
  EXPECT_GT(update.message->reply_to_message->message_id, 0);
  EXPECT_NE(update.message->reply_to_message->message_id, update.message->message_id);
}

TEST(UpdateCorpus, NestedEntitiesSelectText) {
  const Update update = parse_update_file("message_entities_nested_01.json");
  ASSERT_TRUE(update.message.has_value());
  const Message& message = *update.message;
  ASSERT_TRUE(message.text.has_value());
  ASSERT_TRUE(message.entities.has_value());
  ASSERT_EQ(message.entities->size(), 4U);
  EXPECT_EQ(entity_text(*message.text, message.entities->at(0)), "bold");
  EXPECT_EQ(entity_text(*message.text, message.entities->at(1)), "nested ");
  EXPECT_EQ(entity_text(*message.text, message.entities->at(3)), "italic and bold");
}

TEST(UpdateCorpus, EveryEntityFitsItsText) {
  for (const auto& file : json_files("updates")) {
    if (file.filename() == kRedactedShippingFile) {
      continue;
    }
    SCOPED_TRACE(file.filename().string());
    const Update update = parse_json<Update>(read_file(file));
    if (!update.message || !update.message->text || !update.message->entities) {
      continue;
    }
    for (const MessageEntity& entity : *update.message->entities) {
      EXPECT_TRUE(entity_text(*update.message->text, entity).has_value())
          << entity.type << " at " << entity.offset << "+" << entity.length;
    }
  }
}

// -- replies -------------------------------------------------------------------

template <class Request>
void expect_result_parses(const std::string& name) {
  SCOPED_TRACE(name);
  const ResponseEnvelope envelope =
      parse_response_envelope(read_file(testing::data_dir() / "responses" / name));
  ASSERT_TRUE(envelope.ok);
  typename Request::result_type result{};
  auto error = try_from_json(envelope.result, result, Request::method_name);
  EXPECT_FALSE(error.has_value()) << error->what();
  EXPECT_TRUE(from_json<typename Request::result_type>(to_json(result)) == result);
}

TEST(ResponseCorpus, ResultsParseToMethodTypes) {
  int checked = 0;
  for (const auto& file : json_files("responses")) {
    const std::string name = file.filename().string();
    if (name.starts_with("getupdates_")) {
      expect_result_parses<GetUpdates>(name);
    } else if (name.starts_with("ok_get_chat_administrators_")) {
      expect_result_parses<GetChatAdministrators>(name);
    } else if (name.starts_with("ok_get_chat_")) {
      expect_result_parses<GetChat>(name);
    } else if (name.starts_with("ok_get_me_")) {
      expect_result_parses<GetMe>(name);
    } else if (name.starts_with("ok_get_webhook_info_")) {
      expect_result_parses<GetWebhookInfo>(name);
    } else if (name.starts_with("ok_send_media_group_")) {
      expect_result_parses<SendMediaGroup>(name);
    } else if (name.starts_with("ok_send_poll_")) {
      expect_result_parses<SendPoll>(name);
    } else if (name.starts_with("ok_send_voice_")) {
      expect_result_parses<SendVoice>(name);
    } else if (name.starts_with("ok_stop_poll_")) {
      expect_result_parses<StopPoll>(name);
    } else if (name.starts_with("ok_true_")) {
      expect_result_parses<DeleteWebhook>(name);
    } else {
      continue;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 15);
}

TEST(ResponseCorpus, GetUpdatesResultHasEveryUpdate) {
  const ResponseEnvelope envelope =
      parse_response_envelope(read_file(testing::data_dir() / "responses" / "getupdates_result_01.json"));
  const std::vector<Update> updates = parse_result<GetUpdates>(envelope);
  EXPECT_EQ(updates.size(), 47U);
  const ResponseEnvelope empty =
      parse_response_envelope(read_file(testing::data_dir() / "responses" / "getupdates_empty_01.json"));
  EXPECT_TRUE(parse_result<GetUpdates>(empty).empty());
}

TEST(ResponseCorpus, ErrorsParseAsEnvelopes) {
  int checked = 0;
  for (const auto& file : json_files("responses")) {
    const std::string name = file.filename().string();
    if (!name.starts_with("error_")) {
      continue;
    }
    SCOPED_TRACE(name);
    const ResponseEnvelope envelope = parse_response_envelope(read_file(file));
    EXPECT_FALSE(envelope.ok);
    EXPECT_TRUE(envelope.description.has_value());
    EXPECT_TRUE(envelope.result.is_null());
    if (name == "error_403_no_error_code_01.json") {
      EXPECT_FALSE(envelope.error_code.has_value());
    } else {
      ASSERT_TRUE(envelope.error_code.has_value());
      EXPECT_EQ(std::to_string(*envelope.error_code), name.substr(6, 3));
    }
    ++checked;
  }
  EXPECT_EQ(checked, 14);
}

TEST(ResponseCorpus, ErrorParametersAreTyped) {
  const ResponseEnvelope flood =
      parse_response_envelope(read_file(testing::data_dir() / "responses" / "error_429_retry_after_01.json"));
  ASSERT_TRUE(flood.parameters.has_value());
  EXPECT_EQ(flood.parameters->retry_after, 8);
  EXPECT_FALSE(flood.parameters->migrate_to_chat_id.has_value());

  const ResponseEnvelope migrated = parse_response_envelope(
      read_file(testing::data_dir() / "responses" / "error_400_group_migrated_01.json"));
  ASSERT_TRUE(migrated.parameters.has_value());
  EXPECT_EQ(migrated.parameters->migrate_to_chat_id, -100000003);
}

TEST(ResponseCorpus, ParseResultRejectsFailedReply) {
  const ResponseEnvelope envelope =
      parse_response_envelope(read_file(testing::data_dir() / "responses" / "error_401_unauthorized_01.json"));
  EXPECT_THROW((void)parse_result<GetMe>(envelope), ParseError);
}

}  // namespace
}  // namespace sluice::telegram
