#include <sluice/sandbox/scenario.hpp>

#include <algorithm>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include <boost/json/parse.hpp>

#include "engine_internal.hpp"
#include "json_number.hpp"
#include "stable_sort.hpp"

namespace sluice::sandbox {
namespace {

[[noreturn]] void invalid(std::string_view where, std::string_view what) {
  throw std::invalid_argument(std::string(where) + ": " + std::string(what));
}

boost::json::object const& as_object(boost::json::value const& json, std::string_view where) {
  if (!json.is_object()) {
    invalid(where, "must be an object");
  }
  return json.get_object();
}

// Throws for the first field of `object` that is not in `known`, so that a
// misspelt field is an error instead of a silently used default.
void reject_unknown_fields(boost::json::object const& object, std::string_view where,
                           std::initializer_list<std::string_view> known) {
  for (auto const& item : object) {
    const std::string_view key(item.key().data(), item.key().size());
    if (std::find(known.begin(), known.end(), key) != known.end()) {
      continue;
    }
    std::string expected;
    for (std::string_view name : known) {
      expected += expected.empty() ? "" : ", ";
      expected += name;
    }
    invalid(where, "unknown field \"" + std::string(key) + "\"; expected one of " + expected);
  }
}

// Parses fault rules after rejecting unknown fields, because
// fault_rules_from_json ignores the fields it does not read.
std::vector<FaultRule> checked_fault_rules(boost::json::value const& json) {
  if (json.is_array()) {
    std::size_t index = 0;
    for (auto const& rule : json.get_array()) {
      if (rule.is_object()) {
        reject_unknown_fields(rule.get_object(), "faults[" + std::to_string(index) + "]",
                              {"method", "kind", "rate", "latency_ms", "status", "max_count"});
      }
      ++index;
    }
  }
  return fault_rules_from_json(json);
}

std::optional<std::int64_t> optional_int(boost::json::object const& object, std::string_view key,
                                         std::string_view where) {
  auto const* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (value->is_int64()) {
    return value->get_int64();
  }
  if (value->is_uint64()) {
    return static_cast<std::int64_t>(value->get_uint64());
  }
  invalid(where, "field \"" + std::string(key) + "\" must be an integer");
}

std::optional<double> optional_number(boost::json::object const& object, std::string_view key,
                                      std::string_view where) {
  auto const* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (value->is_number()) {
    return value->to_number<double>();
  }
  invalid(where, "field \"" + std::string(key) + "\" must be a number");
}

std::optional<std::string> optional_string(boost::json::object const& object, std::string_view key,
                                           std::string_view where) {
  auto const* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (!value->is_string()) {
    invalid(where, "field \"" + std::string(key) + "\" must be a string");
  }
  return std::string(value->get_string());
}

bool optional_bool(boost::json::object const& object, std::string_view key, std::string_view where,
                   bool fallback = false) {
  auto const* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    return fallback;
  }
  if (!value->is_bool()) {
    invalid(where, "field \"" + std::string(key) + "\" must be true or false");
  }
  return value->get_bool();
}

RateLimit rate_from_json(boost::json::value const& json, RateLimit base, std::string_view where) {
  auto const& object = as_object(json, where);
  reject_unknown_fields(object, where, {"count", "period_ms", "burst"});
  if (auto count = optional_number(object, "count", where)) {
    base.count = *count;
  }
  if (auto period = optional_int(object, "period_ms", where)) {
    base.period = std::chrono::milliseconds(*period);
  }
  if (auto burst = optional_int(object, "burst", where)) {
    base.burst = static_cast<std::size_t>(std::max<std::int64_t>(*burst, 0));
  }
  if (base.count <= 0 || base.period.count() <= 0 || base.burst < 1) {
    invalid(where, "count and period_ms must be positive and burst at least 1");
  }
  return base;
}

boost::json::object rate_to_json(RateLimit const& rate) {
  boost::json::object json;
  json["count"] = json_number(rate.count);
  json["period_ms"] = rate.period.count();
  json["burst"] = rate.burst;
  return json;
}

ScriptedEvent event_from_json(boost::json::value const& json, std::filesystem::path const& base_dir,
                              std::string const& where) {
  auto const& object = as_object(json, where);
  ScriptedEvent event;
  event.at = std::chrono::milliseconds(optional_int(object, "at_ms", where).value_or(0));
  if (auto const* message = object.if_contains("message")) {
    reject_unknown_fields(object, where, {"at_ms", "message"});
    auto const& fields = as_object(*message, where + ".message");
    reject_unknown_fields(fields, where + ".message", {"from", "chat", "text"});
    event.kind = ScriptedEvent::Kind::message;
    event.user_id = optional_int(fields, "from", where).value_or(0);
    event.chat_id = optional_int(fields, "chat", where).value_or(0);
    event.text = optional_string(fields, "text", where).value_or("");
    if (event.user_id == 0) {
      invalid(where, "message needs \"from\" (a user id)");
    }
    return event;
  }
  if (auto const* press = object.if_contains("callback_query")) {
    reject_unknown_fields(object, where, {"at_ms", "callback_query"});
    auto const& fields = as_object(*press, where + ".callback_query");
    reject_unknown_fields(fields, where + ".callback_query", {"from", "chat", "message_id", "data", "wait_ms"});
    event.kind = ScriptedEvent::Kind::callback_query;
    event.user_id = optional_int(fields, "from", where).value_or(0);
    event.chat_id = optional_int(fields, "chat", where).value_or(0);
    event.message_id = optional_int(fields, "message_id", where);
    event.data = optional_string(fields, "data", where);
    if (auto wait = optional_int(fields, "wait_ms", where)) {
      event.wait_for_message = std::chrono::milliseconds(*wait);
    }
    if (event.user_id == 0) {
      invalid(where, "callback_query needs \"from\" (a user id)");
    }
    return event;
  }
  if (auto const* update = object.if_contains("update")) {
    // Only the event is checked: the Update itself is Telegram's data and
    // is delivered as written.
    reject_unknown_fields(object, where, {"at_ms", "update"});
    event.kind = ScriptedEvent::Kind::update;
    event.update = as_object(*update, where + ".update");
    return event;
  }
  if (auto replay = optional_string(object, "replay", where)) {
    reject_unknown_fields(object, where, {"at_ms", "replay", "interval_ms"});
    event.kind = ScriptedEvent::Kind::replay;
    std::filesystem::path path(*replay);
    event.replay_path = path.is_absolute() ? path : base_dir / path;
    event.interval = std::chrono::milliseconds(optional_int(object, "interval_ms", where).value_or(0));
    return event;
  }
  invalid(where, "an event needs one of \"message\", \"callback_query\", \"update\" or \"replay\"");
}

}  // namespace

User user_from_json(boost::json::value const& json) {
  constexpr std::string_view where = "user";
  auto const& object = as_object(json, where);
  reject_unknown_fields(object, where,
                        {"id", "first_name", "last_name", "username", "language_code", "is_premium", "blocked_bot",
                         "deactivated"});
  User user;
  user.id = optional_int(object, "id", where).value_or(0);
  if (user.id <= 0) {
    invalid(where, "field \"id\" must be a positive integer");
  }
  user.first_name = optional_string(object, "first_name", where).value_or("User " + std::to_string(user.id));
  user.last_name = optional_string(object, "last_name", where).value_or("");
  user.username = optional_string(object, "username", where).value_or("");
  user.language_code = optional_string(object, "language_code", where).value_or("");
  user.is_premium = optional_bool(object, "is_premium", where);
  user.blocked_bot = optional_bool(object, "blocked_bot", where);
  user.deactivated = optional_bool(object, "deactivated", where);
  return user;
}

Chat chat_from_json(boost::json::value const& json) {
  constexpr std::string_view where = "chat";
  auto const& object = as_object(json, where);
  reject_unknown_fields(object, where,
                        {"id", "type", "title", "username", "is_forum", "migrated_to_chat_id", "bot_removed",
                         "bot_is_admin"});
  Chat chat;
  chat.id = optional_int(object, "id", where).value_or(0);
  if (chat.id >= 0) {
    invalid(where, "field \"id\" must be negative (private chats come from users)");
  }
  auto type = parse_chat_type(optional_string(object, "type", where).value_or(""));
  if (!type || *type == ChatType::private_chat) {
    invalid(where, "field \"type\" must be \"group\", \"supergroup\" or \"channel\"");
  }
  chat.type = *type;
  chat.title = optional_string(object, "title", where).value_or("Chat " + std::to_string(chat.id));
  chat.username = optional_string(object, "username", where).value_or("");
  chat.is_forum = optional_bool(object, "is_forum", where);
  chat.migrated_to_chat_id = optional_int(object, "migrated_to_chat_id", where).value_or(0);
  chat.bot_removed = optional_bool(object, "bot_removed", where);
  chat.bot_is_admin = optional_bool(object, "bot_is_admin", where);
  if (chat.migrated_to_chat_id != 0 && chat.type != ChatType::group) {
    invalid(where, "only a \"group\" can have migrated_to_chat_id");
  }
  return chat;
}

FloodOptions flood_from_json(boost::json::value const& json, FloodOptions base) {
  constexpr std::string_view where = "flood";
  auto const& object = as_object(json, where);
  reject_unknown_fields(object, where, {"enabled", "global", "private_chat", "group", "paid_broadcast"});
  base.enabled = optional_bool(object, "enabled", where, base.enabled);
  if (auto const* value = object.if_contains("global")) {
    base.global = rate_from_json(*value, base.global, "flood.global");
  }
  if (auto const* value = object.if_contains("private_chat")) {
    base.private_chat = rate_from_json(*value, base.private_chat, "flood.private_chat");
  }
  if (auto const* value = object.if_contains("group")) {
    base.group = rate_from_json(*value, base.group, "flood.group");
  }
  if (auto const* value = object.if_contains("paid_broadcast")) {
    base.paid_broadcast = rate_from_json(*value, base.paid_broadcast, "flood.paid_broadcast");
  }
  return base;
}

boost::json::object flood_to_json(FloodOptions const& options) {
  boost::json::object json;
  json["enabled"] = options.enabled;
  json["global"] = rate_to_json(options.global);
  json["private_chat"] = rate_to_json(options.private_chat);
  json["group"] = rate_to_json(options.group);
  json["paid_broadcast"] = rate_to_json(options.paid_broadcast);
  return json;
}

WebhookOptions webhook_options_from_json(boost::json::value const& json, WebhookOptions base) {
  constexpr std::string_view where = "webhook";
  auto const& object = as_object(json, where);
  reject_unknown_fields(object, where, {"retry_initial_ms", "retry_max_ms", "request_timeout_ms", "require_https"});
  if (auto value = optional_int(object, "retry_initial_ms", where)) {
    base.retry_initial = std::chrono::milliseconds(*value);
  }
  if (auto value = optional_int(object, "retry_max_ms", where)) {
    base.retry_max = std::chrono::milliseconds(*value);
  }
  if (auto value = optional_int(object, "request_timeout_ms", where)) {
    base.request_timeout = std::chrono::milliseconds(*value);
  }
  base.require_https = optional_bool(object, "require_https", where, base.require_https);
  if (base.retry_initial.count() < 0 || base.retry_max < base.retry_initial || base.request_timeout.count() <= 0) {
    invalid(where, "retry_initial_ms must be >= 0, retry_max_ms >= retry_initial_ms, request_timeout_ms > 0");
  }
  return base;
}

Scenario parse_scenario(boost::json::value const& json, std::filesystem::path const& base_dir) {
  constexpr std::string_view where = "scenario";
  auto const& object = as_object(json, where);
  reject_unknown_fields(object, where,
                        {"bot", "users", "chats", "events", "simulate", "flood", "faults", "webhook",
                         "first_update_id"});
  Scenario scenario;

  if (auto const* bot = object.if_contains("bot")) {
    auto const& fields = as_object(*bot, "bot");
    reject_unknown_fields(fields, "bot",
                          {"token", "first_name", "username", "can_join_groups", "can_read_all_group_messages",
                           "supports_inline_queries"});
    BotIdentity identity;
    identity.token = optional_string(fields, "token", "bot").value_or(identity.token);
    identity.first_name = optional_string(fields, "first_name", "bot").value_or(identity.first_name);
    identity.username = optional_string(fields, "username", "bot").value_or(identity.username);
    identity.can_join_groups = optional_bool(fields, "can_join_groups", "bot", identity.can_join_groups);
    identity.can_read_all_group_messages =
        optional_bool(fields, "can_read_all_group_messages", "bot", identity.can_read_all_group_messages);
    identity.supports_inline_queries =
        optional_bool(fields, "supports_inline_queries", "bot", identity.supports_inline_queries);
    if (identity.id() <= 0) {
      invalid("bot", "field \"token\" must start with the bot's numeric id and ':'");
    }
    scenario.bot = std::move(identity);
  }
  if (auto const* users = object.if_contains("users")) {
    if (!users->is_array()) {
      invalid(where, "field \"users\" must be an array");
    }
    for (auto const& user : users->get_array()) {
      scenario.users.push_back(user_from_json(user));
    }
  }
  if (auto const* chats = object.if_contains("chats")) {
    if (!chats->is_array()) {
      invalid(where, "field \"chats\" must be an array");
    }
    for (auto const& chat : chats->get_array()) {
      scenario.chats.push_back(chat_from_json(chat));
    }
  }
  if (auto const* events = object.if_contains("events")) {
    if (!events->is_array()) {
      invalid(where, "field \"events\" must be an array");
    }
    std::size_t index = 0;
    for (auto const& event : events->get_array()) {
      scenario.events.push_back(event_from_json(event, base_dir, "events[" + std::to_string(index++) + "]"));
    }
    stable_sort_items(scenario.events, [](ScriptedEvent const& a, ScriptedEvent const& b) { return a.at < b.at; });
  }
  if (auto const* simulate = object.if_contains("simulate")) {
    auto const& fields = as_object(*simulate, "simulate");
    reject_unknown_fields(fields, "simulate",
                          {"users", "messages_per_user", "rate_per_second", "blocked_fraction", "first_user_id",
                           "seed", "start_at_ms"});
    SimulateSpec spec;
    spec.users = optional_int(fields, "users", "simulate").value_or(0);
    if (auto const* texts = fields.if_contains("messages_per_user")) {
      if (!texts->is_array()) {
        invalid("simulate", "field \"messages_per_user\" must be an array of strings");
      }
      for (auto const& text : texts->get_array()) {
        if (!text.is_string()) {
          invalid("simulate", "field \"messages_per_user\" must be an array of strings");
        }
        spec.messages_per_user.emplace_back(text.get_string());
      }
    }
    spec.rate_per_second = optional_number(fields, "rate_per_second", "simulate").value_or(spec.rate_per_second);
    spec.blocked_fraction = optional_number(fields, "blocked_fraction", "simulate").value_or(0);
    spec.first_user_id = optional_int(fields, "first_user_id", "simulate").value_or(spec.first_user_id);
    spec.seed = static_cast<std::uint64_t>(optional_int(fields, "seed", "simulate").value_or(1));
    spec.start_at = std::chrono::milliseconds(optional_int(fields, "start_at_ms", "simulate").value_or(0));
    if (spec.users < 0 || spec.rate_per_second <= 0 || spec.blocked_fraction < 0 || spec.blocked_fraction > 1 ||
        spec.first_user_id <= 0) {
      invalid("simulate", "users must be >= 0, rate_per_second > 0, blocked_fraction in [0, 1], first_user_id > 0");
    }
    scenario.simulate = std::move(spec);
  }
  if (auto const* flood = object.if_contains("flood")) {
    scenario.flood = flood_from_json(*flood, FloodOptions{});
  }
  if (auto const* faults = object.if_contains("faults")) {
    scenario.faults = checked_fault_rules(*faults);
  }
  if (auto const* webhook = object.if_contains("webhook")) {
    scenario.webhook = webhook_options_from_json(*webhook, WebhookOptions{});
  }
  scenario.first_update_id = optional_int(object, "first_update_id", where);
  return scenario;
}

namespace {

std::string read_file(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open " + path.string());
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

boost::json::value parse_file(std::filesystem::path const& path) {
  boost::system::error_code ec;
  auto json = boost::json::parse(read_file(path), ec);
  if (ec) {
    throw std::runtime_error("cannot parse " + path.string() + " as JSON: " + ec.message());
  }
  return json;
}

}  // namespace

Scenario load_scenario(std::filesystem::path const& file) {
  auto json = parse_file(file);
  try {
    return parse_scenario(json, file.parent_path());
  } catch (std::invalid_argument const& error) {
    throw std::invalid_argument(file.string() + ": " + error.what());
  }
}

void apply_scenario_options(Scenario const& scenario, EngineOptions& options) {
  if (scenario.bot) {
    options.bot = *scenario.bot;
  }
  if (scenario.flood) {
    options.flood = *scenario.flood;
  }
  if (scenario.faults) {
    options.faults = *scenario.faults;
  }
  if (scenario.webhook) {
    options.webhook = *scenario.webhook;
  }
  if (scenario.first_update_id) {
    options.first_update_id = *scenario.first_update_id;
  }
}

void apply_scenario_world(Scenario const& scenario, Engine& engine) {
  for (auto const& user : scenario.users) {
    engine.add_user(user);
  }
  for (auto const& chat : scenario.chats) {
    engine.add_chat(chat);
  }
}

std::vector<boost::json::object> load_update_files(std::filesystem::path const& path) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path)) {
    for (auto const& entry : std::filesystem::directory_iterator(path)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }

  std::vector<boost::json::object> updates;
  for (auto const& file : files) {
    auto json = parse_file(file);
    if (json.is_object() && json.get_object().contains("ok") && json.get_object().contains("result")) {
      json = json.get_object().at("result");
    }
    if (json.is_object()) {
      updates.push_back(std::move(json.get_object()));
      continue;
    }
    if (!json.is_array()) {
      throw std::runtime_error(file.string() + " holds neither an Update, an array of Updates nor a getUpdates reply");
    }
    for (auto& item : json.get_array()) {
      if (!item.is_object()) {
        throw std::runtime_error(file.string() + " contains an array item that is not an Update object");
      }
      updates.push_back(std::move(item.get_object()));
    }
  }
  return updates;
}

// ---------------------------------------------- Engine control settings ----

void Engine::apply_config(boost::json::object const& config) {
  // Validate everything before changing anything.
  std::optional<FloodOptions> flood;
  std::optional<std::vector<FaultRule>> faults;
  std::optional<WebhookOptions> webhook;
  std::vector<User> users;
  std::vector<Chat> chats;
  for (auto const& [key, value] : config) {
    if (key == "flood") {
      flood = flood_from_json(value, flood_.options());
    } else if (key == "faults") {
      faults = checked_fault_rules(value);
    } else if (key == "webhook") {
      webhook = webhook_options_from_json(value, options_.webhook);
    } else if (key == "users") {
      if (!value.is_array()) {
        throw std::invalid_argument("config: field \"users\" must be an array");
      }
      for (auto const& user : value.get_array()) {
        users.push_back(user_from_json(user));
      }
    } else if (key == "chats") {
      if (!value.is_array()) {
        throw std::invalid_argument("config: field \"chats\" must be an array");
      }
      for (auto const& chat : value.get_array()) {
        chats.push_back(chat_from_json(chat));
      }
    } else {
      throw std::invalid_argument("config: unknown field \"" + std::string(key) +
                                  "\"; expected flood, faults, webhook, users or chats");
    }
  }

  if (flood) {
    options_.flood = *flood;
    flood_.set_options(*flood);
  }
  if (faults) {
    options_.faults = *faults;
    faults_.set_rules(std::move(*faults));
  }
  if (webhook) {
    options_.webhook = *webhook;
  }
  for (auto& user : users) {
    add_user(std::move(user));
  }
  for (auto& chat : chats) {
    add_chat(std::move(chat));
  }
}

boost::json::object Engine::config_json() const {
  boost::json::object webhook;
  webhook["retry_initial_ms"] = options_.webhook.retry_initial.count();
  webhook["retry_max_ms"] = options_.webhook.retry_max.count();
  webhook["request_timeout_ms"] = options_.webhook.request_timeout.count();
  webhook["require_https"] = options_.webhook.require_https;

  boost::json::object config;
  config["flood"] = flood_to_json(flood_.options());
  config["faults"] = fault_rules_to_json(faults_.rules());
  config["webhook"] = std::move(webhook);
  return config;
}

}  // namespace sluice::sandbox
