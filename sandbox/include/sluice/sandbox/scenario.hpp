#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <sluice/sandbox/engine.hpp>

namespace sluice::sandbox {

/// One timed step of a scenario.
struct ScriptedEvent {
  enum class Kind {
    /// A text message from `user_id` in `chat_id` (the user's private chat
    /// when 0).
    message,
    /// A button press by `user_id` on a bot message in `chat_id`.
    callback_query,
    /// An update pushed as written (its update_id is replaced).
    update,
    /// Every update of a recorded file or folder, in order.
    replay,
  };

  Kind kind = Kind::message;
  /// Time from the scenario's start.
  std::chrono::milliseconds at{0};
  std::int64_t user_id = 0;
  std::int64_t chat_id = 0;
  std::string text;
  /// Callback query: the bot message to press a button on; when absent,
  /// the newest bot message with a callback button in the chat.
  std::optional<std::int64_t> message_id;
  /// Callback query data; defaults to the message's first callback button.
  std::optional<std::string> data;
  /// Callback query: how long to wait for a bot message with a callback
  /// button before skipping the event.
  std::chrono::milliseconds wait_for_message = std::chrono::seconds(10);
  boost::json::object update;
  /// Replay: a file or a folder of *.json files, already resolved against
  /// the scenario file's folder.
  std::filesystem::path replay_path;
  /// Replay: pause between two replayed updates.
  std::chrono::milliseconds interval{0};
};

/// Users created by the sandbox that each send a list of messages.
struct SimulateSpec {
  std::int64_t users = 0;
  /// Texts each user sends, in order. Users take turns: every user sends
  /// its first text before any sends its second.
  std::vector<std::string> messages_per_user;
  /// Messages per second over all users.
  double rate_per_second = 100;
  /// Share of users (0 to 1) who block the bot right after their last
  /// message: replies to them get 403, and the bot receives my_chat_member.
  double blocked_fraction = 0;
  /// Id of the first simulated user; the others follow.
  std::int64_t first_user_id = 6'000'000'001;
  std::uint64_t seed = 1;
  /// Time from the scenario's start to the first message.
  std::chrono::milliseconds start_at{0};
};

/// A scenario file: who exists, what happens when, and optional settings.
struct Scenario {
  std::optional<BotIdentity> bot;
  std::vector<User> users;
  std::vector<Chat> chats;
  std::vector<ScriptedEvent> events;
  std::optional<SimulateSpec> simulate;
  std::optional<FloodOptions> flood;
  std::optional<std::vector<FaultRule>> faults;
  std::optional<WebhookOptions> webhook;
  std::optional<std::int64_t> first_update_id;
};

/// Reads a scenario from JSON (format in docs/sandbox.md). Relative replay
/// paths are resolved against `base_dir`. Throws std::invalid_argument
/// naming the offending field.
Scenario parse_scenario(boost::json::value const& json, std::filesystem::path const& base_dir);

/// Reads a scenario file. Throws std::runtime_error when the file cannot be
/// read or parsed, std::invalid_argument for a bad field.
Scenario load_scenario(std::filesystem::path const& file);

/// Copies the scenario's settings (bot, limits, faults, webhook options,
/// first update id) into engine options.
void apply_scenario_options(Scenario const& scenario, EngineOptions& options);

/// Adds the scenario's users and chats to the engine.
void apply_scenario_world(Scenario const& scenario, Engine& engine);

/// Reads recorded updates from a file or from every *.json file of a
/// folder (sorted by name). A file may hold one Update, an array of
/// Updates, or a getUpdates response {"ok":true,"result":[...]}. Throws
/// std::runtime_error naming the file on a read or parse error.
std::vector<boost::json::object> load_update_files(std::filesystem::path const& path);

// JSON readers shared by scenarios and POST /sandbox/config. Each throws
// std::invalid_argument naming the bad field.
User user_from_json(boost::json::value const& json);
Chat chat_from_json(boost::json::value const& json);
FloodOptions flood_from_json(boost::json::value const& json, FloodOptions base);
WebhookOptions webhook_options_from_json(boost::json::value const& json, WebhookOptions base);
boost::json::object flood_to_json(FloodOptions const& options);

}  // namespace sluice::sandbox
