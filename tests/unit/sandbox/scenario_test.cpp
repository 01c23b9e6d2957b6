// Scenario files and the replay of recorded updates.

#include <sluice/sandbox/scenario.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "support.hpp"

namespace sluice::sandbox {
namespace {

using testing::Harness;
using testing::load_data;

std::filesystem::path updates_dir() {
  return std::filesystem::path(SLUICE_TEST_DATA_DIR) / "updates";
}

TEST(Scenario, ReplayKeepsEveryCorpusUpdate) {
  EngineOptions options = Harness::default_options();
  Harness harness(options);
  // Every kind, including the three Telegram sends only on request.
  harness.call("getUpdates", {{"allowed_updates", R"(["message","edited_message","channel_post",
      "edited_channel_post","business_connection","business_message","edited_business_message",
      "deleted_business_messages","guest_message","message_reaction","message_reaction_count","inline_query",
      "chosen_inline_result","callback_query","shipping_query","pre_checkout_query","purchased_paid_media",
      "poll","poll_answer","my_chat_member","chat_member","chat_join_request","chat_boost",
      "removed_chat_boost","managed_bot"])"}});

  std::vector<std::filesystem::path> files;
  for (auto const& entry : std::filesystem::directory_iterator(updates_dir())) {
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 80u);

  auto updates = load_update_files(updates_dir());
  ASSERT_EQ(updates.size(), files.size());
  for (auto& update : updates) {
    ASSERT_TRUE(harness.engine().push_update(update, harness.now()).has_value());
  }

  std::size_t index = 0;
  std::int64_t offset = 0;
  while (index < files.size()) {
    auto reply = harness.call("getUpdates", {{"offset", offset}, {"limit", 100}});
    ASSERT_TRUE(reply.ok());
    auto const& batch = reply.result().as_array();
    ASSERT_FALSE(batch.empty());
    for (auto const& delivered : batch) {
      auto original = load_data("updates/" + files[index].filename().string()).as_object();
      auto copy = delivered.as_object();
      EXPECT_EQ(copy.at("update_id").as_int64(), 500 + static_cast<std::int64_t>(index));
      copy.erase("update_id");
      original.erase("update_id");
      EXPECT_EQ(copy, original) << files[index].filename();
      std::vector<std::string> delivered_keys;
      for (auto const& [key, value] : delivered.as_object()) {
        delivered_keys.emplace_back(key);
      }
      std::vector<std::string> recorded_keys;
      auto const recorded = load_data("updates/" + files[index].filename().string());
      for (auto const& [key, value] : recorded.as_object()) {
        recorded_keys.emplace_back(key);
      }
      EXPECT_EQ(delivered_keys, recorded_keys) << "key order of " << files[index].filename();
      offset = delivered.at("update_id").as_int64() + 1;
      ++index;
    }
  }
  harness.call("getUpdates", {{"offset", offset}});
  EXPECT_EQ(harness.engine().stats().updates_confirmed, files.size());
}

TEST(Scenario, ReplayedChatsBecomeKnown) {
  Harness harness;
  auto update = load_data("updates/message_text_01.json").as_object();
  ASSERT_TRUE(harness.engine().push_update(update, harness.now()).has_value());
  auto chat_id = update.at("message").at("chat").at("id").as_int64();
  auto reply = harness.call("sendMessage", {{"chat_id", chat_id}, {"text", "hello"}});
  EXPECT_TRUE(reply.ok()) << reply.body;
}

TEST(Scenario, LoadsGetUpdatesResponses) {
  auto updates = load_update_files(std::filesystem::path(SLUICE_TEST_DATA_DIR) / "responses/getupdates_result_02.json");
  EXPECT_EQ(updates.size(), 5u);
  EXPECT_THROW(load_update_files(std::filesystem::path(SLUICE_TEST_DATA_DIR) / "missing.json"), std::runtime_error);
}

TEST(Scenario, ParsesFullScenario) {
  auto json = boost::json::parse(R"({
    "bot": {"token": "42:TEST", "username": "test_bot"},
    "first_update_id": 7000,
    "users": [
      {"id": 1001, "first_name": "Alice", "username": "alice"},
      {"id": 1002, "first_name": "Bob", "blocked_bot": true}
    ],
    "chats": [
      {"id": -5, "type": "group", "title": "Old", "migrated_to_chat_id": -1009},
      {"id": -1007, "type": "channel", "title": "News", "username": "news"}
    ],
    "events": [
      {"at_ms": 500, "callback_query": {"from": 1001}},
      {"at_ms": 0, "message": {"from": 1001, "text": "/start"}},
      {"at_ms": 900, "replay": "updates", "interval_ms": 5},
      {"at_ms": 1000, "update": {"message": {"message_id": 1, "date": 1, "chat": {"id": 3, "type": "private"}}}}
    ],
    "simulate": {"users": 10, "messages_per_user": ["/start", "/subscribe"], "rate_per_second": 50,
                 "blocked_fraction": 0.1},
    "flood": {"enabled": false},
    "faults": [{"method": "sendMessage", "kind": "server_error", "rate": 0.01}],
    "webhook": {"retry_initial_ms": 10}
  })");
  auto scenario = parse_scenario(json, "/base");
  ASSERT_TRUE(scenario.bot.has_value());
  EXPECT_EQ(scenario.bot->id(), 42);
  EXPECT_EQ(scenario.first_update_id, 7000);
  ASSERT_EQ(scenario.users.size(), 2u);
  EXPECT_TRUE(scenario.users[1].blocked_bot);
  ASSERT_EQ(scenario.chats.size(), 2u);
  EXPECT_EQ(scenario.chats[0].migrated_to_chat_id, -1009);
  ASSERT_EQ(scenario.events.size(), 4u);
  EXPECT_EQ(scenario.events[0].kind, ScriptedEvent::Kind::message) << "events are sorted by time";
  EXPECT_EQ(scenario.events[1].kind, ScriptedEvent::Kind::callback_query);
  EXPECT_EQ(scenario.events[2].replay_path, std::filesystem::path("/base/updates"));
  ASSERT_TRUE(scenario.simulate.has_value());
  EXPECT_EQ(scenario.simulate->messages_per_user.size(), 2u);
  ASSERT_TRUE(scenario.flood.has_value());
  EXPECT_FALSE(scenario.flood->enabled);
  ASSERT_TRUE(scenario.webhook.has_value());
  EXPECT_EQ(scenario.webhook->retry_initial, std::chrono::milliseconds(10));

  EngineOptions options;
  apply_scenario_options(scenario, options);
  Engine engine(options);
  apply_scenario_world(scenario, engine);
  EXPECT_NE(engine.find_chat(-1009), nullptr) << "a migrated group's supergroup is created";
  EXPECT_NE(engine.find_chat(1001), nullptr) << "users get private chats";
}

TEST(Scenario, RejectsBadFields) {
  EXPECT_THROW(parse_scenario(boost::json::parse(R"({"users": [{"id": -1}]})"), "."), std::invalid_argument);
  EXPECT_THROW(parse_scenario(boost::json::parse(R"({"chats": [{"id": -1, "type": "private"}]})"), "."),
               std::invalid_argument);
  EXPECT_THROW(parse_scenario(boost::json::parse(R"({"events": [{"at_ms": 1}]})"), "."), std::invalid_argument);
  EXPECT_THROW(parse_scenario(boost::json::parse(R"({"bot": {"token": "abc"}})"), "."), std::invalid_argument);
  EXPECT_THROW(parse_scenario(boost::json::parse(R"({"simulate": {"blocked_fraction": 2}})"), "."),
               std::invalid_argument);
}

// Returns the message of the std::invalid_argument that parse_scenario
// throws for `text`, or "" when it throws nothing.
std::string parse_error(const char* text) {
  try {
    parse_scenario(boost::json::parse(text), ".");
  } catch (std::invalid_argument const& error) {
    return error.what();
  }
  return "";
}

TEST(Scenario, RejectsUnknownFields) {
  EXPECT_EQ(parse_error(R"({"user": []})"),
            "scenario: unknown field \"user\"; expected one of bot, users, chats, events, simulate, flood, faults, "
            "webhook, first_update_id");
  EXPECT_NE(parse_error(R"({"bot": {"token": "1:A", "name": "x"}})").find("bot: unknown field \"name\""),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"users": [{"id": 1, "firstname": "A"}]})").find("user: unknown field \"firstname\""),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"chats": [{"id": -1, "type": "group", "tilte": "T"}]})")
                .find("chat: unknown field \"tilte\""),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"events": [{"at": 5, "message": {"from": 1}}]})").find("events[0]: unknown field \"at\""),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"events": [{"message": {"from": 1, "txt": "hi"}}]})")
                .find("events[0].message: unknown field \"txt\""),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"events": [{"callback_query": {"from": 1, "wait": 5}}]})")
                .find("events[0].callback_query: unknown field \"wait\""),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"simulate": {"user": 5}})").find("simulate: unknown field \"user\""), std::string::npos);
  EXPECT_NE(parse_error(R"({"flood": {"global": {"count": 1, "period": 1000}}})")
                .find("flood.global: unknown field \"period\""),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"flood": {"globl": {}}})").find("flood: unknown field \"globl\""), std::string::npos);
  EXPECT_NE(parse_error(R"({"webhook": {"retry_ms": 1}})").find("webhook: unknown field \"retry_ms\""),
            std::string::npos);
  EXPECT_NE(parse_error(R"({"faults": [{"kind": "latency", "latency": 5}]})")
                .find("faults[0]: unknown field \"latency\""),
            std::string::npos);
}

TEST(Scenario, KeepsUnknownFieldsOfUpdates) {
  auto scenario = parse_scenario(boost::json::parse(R"({"events": [{"at_ms": 1, "update": {"message": {
    "message_id": 1, "date": 1, "chat": {"id": 3, "type": "private"}, "field_from_the_future": true}}}]})"),
                                 ".");
  ASSERT_EQ(scenario.events.size(), 1u);
  EXPECT_TRUE(scenario.events[0].update.at("message").as_object().contains("field_from_the_future"));
}

TEST(Scenario, LoadErrorNamesTheFile) {
  const auto file = std::filesystem::temp_directory_path() / "sluice_scenario_unknown_field.json";
  {
    std::ofstream out(file);
    out << R"({"users": [], "colour": "blue"})";
  }
  std::string message;
  try {
    load_scenario(file);
  } catch (std::invalid_argument const& error) {
    message = error.what();
  }
  std::filesystem::remove(file);
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
  EXPECT_NE(message.find("unknown field \"colour\""), std::string::npos) << message;
}

TEST(Scenario, DemoFileLoads) {
  auto scenario = load_scenario(std::filesystem::path(SLUICE_SANDBOX_SCENARIO_DIR) / "demo.json");
  EXPECT_TRUE(scenario.simulate.has_value());
}

TEST(Scenario, ExampleFileLoads) {
  auto scenario = load_scenario(std::filesystem::path(SLUICE_SANDBOX_SCENARIO_DIR) / "example.json");
  EXPECT_FALSE(scenario.users.empty());
  EXPECT_FALSE(scenario.events.empty());
}

TEST(Scenario, MethodListMatchesSpec) {
  auto spec = boost::json::parse(testing::read_text_file(SLUICE_SPEC_FILE));
  auto const& methods = spec.at("methods").as_object();
  Harness harness;
  for (auto const& [name, method] : methods) {
    auto reply = harness.call(std::string(name), {});
    EXPECT_NE(reply.status, 404u) << name << " is in the spec but unknown to the sandbox";
  }
}

}  // namespace
}  // namespace sluice::sandbox
