// Engine: dispatch, the update queue (getUpdates and webhook scheduling),
// users and chats, counters and the control API's data.

#include <sluice/sandbox/engine.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <unordered_map>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "engine_internal.hpp"

namespace sluice::sandbox {
namespace {

#include "botapi_names.inc"

// Telegram caps the long-poll timeout at 50 s.
constexpr std::int64_t kMaxPollTimeoutSeconds = 50;
// Telegram honours a webhook's Retry-After of at most one hour.
constexpr std::int64_t kMaxWebhookRetryAfterSeconds = 3600;
// Order violations kept as samples in the stats.
constexpr std::size_t kMaxViolationSamples = 100;

constexpr std::string_view kWebhookConflict =
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";
constexpr std::string_view kPollConflict =
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

// Update kinds a bot receives when it has not chosen any (Telegram leaves
// these three out by default).
bool is_opt_in_update_kind(std::string_view kind) {
  return kind == "chat_member" || kind == "message_reaction" || kind == "message_reaction_count";
}

std::int64_t json_int(boost::json::value const* value) {
  if (value == nullptr) {
    return 0;
  }
  if (value->is_int64()) {
    return value->get_int64();
  }
  if (value->is_uint64()) {
    return static_cast<std::int64_t>(value->get_uint64());
  }
  return 0;
}

boost::json::object const* json_object(boost::json::object const& parent, std::string_view key) {
  auto const* value = parent.if_contains(key);
  return value != nullptr && value->is_object() ? &value->get_object() : nullptr;
}

std::string json_string(boost::json::object const& object, std::string_view key) {
  auto const* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

// The chat (or, for chat-less updates, the user) whose updates a webhook
// must receive one at a time, in order.
std::int64_t order_key_of(boost::json::object const& payload) {
  if (auto const* chat = json_object(payload, "chat")) {
    return json_int(chat->if_contains("id"));
  }
  if (auto const* message = json_object(payload, "message")) {
    if (auto const* chat = json_object(*message, "chat")) {
      return json_int(chat->if_contains("id"));
    }
  }
  if (auto const* from = json_object(payload, "from")) {
    return json_int(from->if_contains("id"));
  }
  if (auto const* user = json_object(payload, "user")) {
    return json_int(user->if_contains("id"));
  }
  return 0;
}

}  // namespace

// ------------------------------------------------------------- helpers ----

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::optional<std::string_view> canonical_method(std::string_view lower_name) {
  static auto const* const names = [] {
    auto* map = new std::unordered_map<std::string, std::string_view>();
    for (auto name : kBotApiMethods) {
      map->emplace(ascii_lower(name), name);
    }
    return map;
  }();
  auto it = names->find(std::string(lower_name));
  if (it == names->end()) {
    return std::nullopt;
  }
  return it->second;
}

bool is_known_update_kind(std::string_view kind) {
  return std::find(std::begin(kUpdateKinds), std::end(kUpdateKinds), kind) != std::end(kUpdateKinds);
}

std::string ok_body(boost::json::value result, std::string_view description) {
  boost::json::object body;
  body["ok"] = true;
  body["result"] = std::move(result);
  if (!description.empty()) {
    body["description"] = description;
  }
  return boost::json::serialize(body);
}

ApiReply error_reply(ApiError const& error) {
  boost::json::object body;
  body["ok"] = false;
  body["error_code"] = error.code;
  body["description"] = error.what();
  if (error.retry_after || error.migrate_to_chat_id) {
    boost::json::object parameters;
    if (error.migrate_to_chat_id) {
      parameters["migrate_to_chat_id"] = *error.migrate_to_chat_id;
    }
    if (error.retry_after) {
      parameters["retry_after"] = *error.retry_after;
    }
    body["parameters"] = std::move(parameters);
  }
  return ApiReply{static_cast<unsigned>(error.code), boost::json::serialize(body)};
}

std::int64_t BotIdentity::id() const {
  std::int64_t id = 0;
  auto colon = token.find(':');
  auto digits = std::string_view(token).substr(0, colon);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc{} || ptr != digits.data() + digits.size()) {
    return 0;
  }
  return id;
}

std::string_view chat_type_name(ChatType type) {
  switch (type) {
    case ChatType::private_chat:
      return "private";
    case ChatType::group:
      return "group";
    case ChatType::supergroup:
      return "supergroup";
    case ChatType::channel:
      return "channel";
  }
  return "private";
}

std::optional<ChatType> parse_chat_type(std::string_view name) {
  if (name == "private") {
    return ChatType::private_chat;
  }
  if (name == "group") {
    return ChatType::group;
  }
  if (name == "supergroup") {
    return ChatType::supergroup;
  }
  if (name == "channel") {
    return ChatType::channel;
  }
  return std::nullopt;
}

// -------------------------------------------------------------- engine ----

Engine::Engine(EngineOptions options, Instant now)
    : options_(std::move(options)),
      start_(now),
      start_unix_(options_.start_unix_time != 0
                      ? options_.start_unix_time
                      : std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count()),
      flood_(options_.flood),
      faults_(options_.faults, options_.seed),
      random_(options_.seed),
      next_update_id_(options_.first_update_id) {}

std::int64_t Engine::unix_time(Instant now) const {
  return start_unix_ + std::chrono::duration_cast<std::chrono::seconds>(now - start_).count();
}

void Engine::add_user(User user) {
  auto id = user.id;
  Chat chat;
  chat.id = id;
  chat.type = ChatType::private_chat;
  chat.username = user.username;
  chat.first_name = user.first_name;
  chat.last_name = user.last_name;
  if (!user.username.empty()) {
    usernames_[ascii_lower(user.username)] = id;
  }
  users_[id] = std::move(user);
  auto& state = chats_[id];
  state.chat = std::move(chat);
}

void Engine::add_chat(Chat chat) {
  if (chat.type == ChatType::group && chat.migrated_to_chat_id != 0 && !chats_.contains(chat.migrated_to_chat_id)) {
    Chat supergroup;
    supergroup.id = chat.migrated_to_chat_id;
    supergroup.type = ChatType::supergroup;
    supergroup.title = chat.title;
    add_chat(std::move(supergroup));
  }
  if (!chat.username.empty()) {
    usernames_[ascii_lower(chat.username)] = chat.id;
  }
  auto id = chat.id;
  chats_[id].chat = std::move(chat);
}

User* Engine::find_user(std::int64_t id) {
  auto it = users_.find(id);
  return it == users_.end() ? nullptr : &it->second;
}

Chat* Engine::find_chat(std::int64_t id) {
  auto it = chats_.find(id);
  return it == chats_.end() ? nullptr : &it->second.chat;
}

boost::json::object Engine::user_json(User const& user, boost::json::storage_ptr storage) const {
  // Reserving the maximum number of fields avoids growing the table.
  boost::json::object json(8, std::move(storage));
  json["id"] = user.id;
  json["is_bot"] = false;
  json["first_name"] = user.first_name;
  if (!user.last_name.empty()) {
    json["last_name"] = user.last_name;
  }
  if (!user.username.empty()) {
    json["username"] = user.username;
  }
  if (!user.language_code.empty()) {
    json["language_code"] = user.language_code;
  }
  if (user.is_premium) {
    json["is_premium"] = true;
  }
  return json;
}

boost::json::object Engine::bot_user_json(boost::json::storage_ptr storage) const {
  boost::json::object json(4, std::move(storage));
  json["id"] = options_.bot.id();
  json["is_bot"] = true;
  json["first_name"] = options_.bot.first_name;
  json["username"] = options_.bot.username;
  return json;
}

boost::json::object Engine::chat_json(Chat const& chat, boost::json::storage_ptr storage) const {
  // Reserving the maximum number of fields avoids growing the table.
  boost::json::object json(6, std::move(storage));
  json["id"] = chat.id;
  if (chat.type == ChatType::private_chat) {
    json["first_name"] = chat.first_name;
    if (!chat.last_name.empty()) {
      json["last_name"] = chat.last_name;
    }
  } else {
    json["title"] = chat.title;
  }
  if (!chat.username.empty()) {
    json["username"] = chat.username;
  }
  json["type"] = chat_type_name(chat.type);
  if (chat.is_forum) {
    json["is_forum"] = true;
  }
  return json;
}

void Engine::learn_user(boost::json::value const& value) {
  if (!value.is_object()) {
    return;
  }
  auto const& object = value.get_object();
  auto id = json_int(object.if_contains("id"));
  if (id == 0 || users_.contains(id)) {
    return;
  }
  auto const* is_bot = object.if_contains("is_bot");
  if (is_bot != nullptr && is_bot->is_bool() && is_bot->get_bool()) {
    return;
  }
  User user;
  user.id = id;
  user.first_name = json_string(object, "first_name");
  user.last_name = json_string(object, "last_name");
  user.username = json_string(object, "username");
  user.language_code = json_string(object, "language_code");
  add_user(std::move(user));
}

void Engine::learn_chat(boost::json::value const& value) {
  if (!value.is_object()) {
    return;
  }
  auto const& object = value.get_object();
  auto id = json_int(object.if_contains("id"));
  auto type = parse_chat_type(json_string(object, "type"));
  if (id == 0 || !type || chats_.contains(id)) {
    return;
  }
  if (*type == ChatType::private_chat) {
    learn_user(value);
    return;
  }
  Chat chat;
  chat.id = id;
  chat.type = *type;
  chat.title = json_string(object, "title");
  chat.username = json_string(object, "username");
  add_chat(std::move(chat));
}

void Engine::learn_from_update(boost::json::object const& update) {
  for (auto const& [key, value] : update) {
    if (key == "update_id" || !value.is_object()) {
      continue;
    }
    auto const& payload = value.get_object();
    if (auto const* from = payload.if_contains("from")) {
      learn_user(*from);
    }
    if (auto const* chat = payload.if_contains("chat")) {
      learn_chat(*chat);
    }
    if (auto const* message = json_object(payload, "message")) {
      if (auto const* from = message->if_contains("from")) {
        learn_user(*from);
      }
      if (auto const* chat = message->if_contains("chat")) {
        learn_chat(*chat);
      }
    }
  }
}

// ------------------------------------------------------------- updates ----

bool Engine::update_kind_allowed(std::string_view kind) const {
  if (!is_known_update_kind(kind)) {
    return true;
  }
  if (!allowed_updates_ || allowed_updates_->empty()) {
    return !is_opt_in_update_kind(kind);
  }
  return std::find(allowed_updates_->begin(), allowed_updates_->end(), kind) != allowed_updates_->end();
}

std::optional<std::int64_t> Engine::push_update(boost::json::object update, Instant now) {
  learn_from_update(update);
  std::string kind;
  boost::json::object const* payload = nullptr;
  for (auto const& [key, value] : update) {
    if (key != "update_id") {
      kind = std::string(key);
      payload = value.is_object() ? &value.get_object() : nullptr;
      break;
    }
  }
  if (!update_kind_allowed(kind)) {
    ++stats_.updates_filtered;
    return std::nullopt;
  }

  auto const update_id = next_update_id_++;
  if (auto* existing = update.if_contains("update_id")) {
    *existing = update_id;
  } else {
    // Telegram puts update_id first; rebuild the object to keep that order.
    boost::json::object ordered;
    ordered.reserve(update.size() + 1);
    ordered["update_id"] = update_id;
    for (auto& [key, value] : update) {
      ordered[key] = std::move(value);
    }
    update = std::move(ordered);
  }

  QueuedUpdate queued;
  queued.update_id = update_id;
  queued.kind = kind;
  queued.order_key = payload != nullptr ? order_key_of(*payload) : 0;
  if (payload != nullptr && kind == "message") {
    auto const* from = json_object(*payload, "from");
    bool const from_bot = from != nullptr && from->if_contains("is_bot") != nullptr &&
                          from->at("is_bot").is_bool() && from->at("is_bot").get_bool();
    if (!from_bot) {
      queued.reply_chat_id = queued.order_key;
    }
  }
  if (payload != nullptr && kind == "callback_query") {
    queued.callback_query_id = json_string(*payload, "id");
  }
  queued.body = boost::json::serialize(update);
  updates_.emplace(update_id, std::move(queued));
  ++stats_.updates_pushed;

  if (webhook_active()) {
    auto const key = updates_.at(update_id).order_key;
    auto& queue = order_queues_[key];
    queue.push_back(update_id);
    if (queue.size() == 1) {
      ready_keys_.emplace(now, key);
    }
  }
  return update_id;
}

std::int64_t Engine::push_user_message(std::int64_t user_id, std::int64_t chat_id, std::string_view text,
                                       Instant now) {
  auto* user = find_user(user_id);
  if (user == nullptr) {
    throw std::invalid_argument("unknown user " + std::to_string(user_id) +
                                "; declare it in the scenario or add it with POST /sandbox/config {\"users\": [...]}");
  }
  if (chat_id == 0) {
    chat_id = user_id;
  }
  auto chat_it = chats_.find(chat_id);
  if (chat_it == chats_.end()) {
    throw std::invalid_argument("unknown chat " + std::to_string(chat_id) +
                                "; declare it in the scenario or add it with POST /sandbox/config {\"chats\": [...]}");
  }
  // Writing to a bot unblocks it, as Telegram's apps do.
  if (chat_id == user_id) {
    user->blocked_bot = false;
  }
  auto& chat = chat_it->second;
  auto const message_id = allocate_message_id(chat);

  FormattedText formatted{std::string(text), {}};
  detect_entities(formatted);
  boost::json::object message;
  message["message_id"] = message_id;
  message["from"] = user_json(*user);
  message["chat"] = chat_json(chat.chat);
  message["date"] = unix_time(now);
  message["text"] = formatted.text;
  if (!formatted.entities.empty()) {
    message["entities"] = entities_to_json(formatted.entities);
  }
  store_message(chat, message_id, message, false);

  boost::json::object update;
  update["update_id"] = 0;
  update["message"] = std::move(message);
  push_update(std::move(update), now);
  return message_id;
}

std::optional<std::int64_t> Engine::last_bot_message_with_buttons(std::int64_t chat_id) const {
  auto it = chats_.find(chat_id);
  if (it == chats_.end()) {
    return std::nullopt;
  }
  auto const& messages = it->second.messages;
  for (auto message = messages.rbegin(); message != messages.rend(); ++message) {
    if (message->second.from_bot && message->second.has_callback_button) {
      return message->first;
    }
  }
  return std::nullopt;
}

std::string Engine::push_callback_query(std::int64_t user_id, std::int64_t chat_id, std::int64_t message_id,
                                        std::optional<std::string> data, Instant now) {
  auto* user = find_user(user_id);
  if (user == nullptr) {
    throw std::invalid_argument("unknown user " + std::to_string(user_id));
  }
  if (chat_id == 0) {
    chat_id = user_id;
  }
  auto chat_it = chats_.find(chat_id);
  if (chat_it == chats_.end()) {
    throw std::invalid_argument("unknown chat " + std::to_string(chat_id));
  }
  auto* stored = find_message(chat_it->second, message_id);
  if (stored == nullptr || !stored->from_bot || !stored->has_callback_button) {
    throw std::invalid_argument("message " + std::to_string(message_id) + " in chat " + std::to_string(chat_id) +
                                " is not a bot message with a callback button");
  }

  // Telegram's query ids are decimal strings of a 64-bit number.
  auto query_id = std::to_string(random_() >> 1);
  auto chat_instance = std::to_string(static_cast<std::int64_t>(random_() >> 1) * (chat_id < 0 ? -1 : 1));
  boost::json::object query;
  query["id"] = query_id;
  query["from"] = user_json(*user);
  query["message"] = boost::json::parse(stored->json);
  query["chat_instance"] = chat_instance;
  query["data"] = data.value_or(stored->first_callback_data);

  boost::json::object update;
  update["update_id"] = 0;
  update["callback_query"] = std::move(query);
  callback_queries_[query_id].chat_id = chat_id;
  push_update(std::move(update), now);
  return query_id;
}

void Engine::block_bot(std::int64_t user_id, Instant now) {
  auto* user = find_user(user_id);
  if (user == nullptr || user->blocked_bot) {
    return;
  }
  user->blocked_bot = true;
  auto member = [&](std::string_view status) {
    boost::json::object object;
    object["user"] = bot_user_json();
    object["status"] = status;
    if (status == "kicked") {
      object["until_date"] = 0;
    }
    return object;
  };
  boost::json::object change;
  change["chat"] = chat_json(chats_.at(user_id).chat);
  change["from"] = user_json(*user);
  change["date"] = unix_time(now);
  change["old_chat_member"] = member("member");
  change["new_chat_member"] = member("kicked");
  boost::json::object update;
  update["update_id"] = 0;
  update["my_chat_member"] = std::move(change);
  push_update(std::move(update), now);
}

void Engine::forget_update(std::int64_t update_id, bool confirmed) {
  auto it = updates_.find(update_id);
  if (it == updates_.end()) {
    return;
  }
  if (confirmed) {
    ++stats_.updates_confirmed;
  } else {
    ++stats_.updates_dropped;
  }
  updates_.erase(it);
}

void Engine::confirm_updates(std::int64_t offset) {
  if (offset > 0) {
    while (!updates_.empty() && updates_.begin()->first < offset) {
      forget_update(updates_.begin()->first, true);
    }
  } else if (offset < 0) {
    auto const keep = static_cast<std::size_t>(-std::max(offset, std::numeric_limits<std::int64_t>::min() + 1));
    while (updates_.size() > keep) {
      forget_update(updates_.begin()->first, false);
    }
  }
}

ApiReply Engine::updates_reply(std::size_t limit, Instant now) {
  std::string body = R"({"ok":true,"result":[)";
  std::size_t count = 0;
  for (auto& [id, update] : updates_) {
    if (count == limit) {
      break;
    }
    if (count > 0) {
      body += ',';
    }
    body += update.body;
    ++count;
    if (update.delivered) {
      continue;
    }
    update.delivered = true;
    ++stats_.updates_delivered;
    if (update.reply_chat_id != 0) {
      auto chat = chats_.find(update.reply_chat_id);
      if (chat != chats_.end() && !chat->second.awaiting_reply_since) {
        chat->second.awaiting_reply_since = now;
      }
    }
    if (!update.callback_query_id.empty()) {
      auto query = callback_queries_.find(update.callback_query_id);
      if (query != callback_queries_.end()) {
        query->second.delivered = true;
        query->second.delivered_at = now;
      }
    }
  }
  body += "]}";
  return ApiReply{200, std::move(body)};
}

Outcome Engine::begin_get_updates(CallContext& call) {
  if (webhook_active()) {
    throw ApiError(409, std::string(kWebhookConflict));
  }
  auto const offset = call.params.integer("offset").value_or(0);
  auto const limit = std::clamp<std::int64_t>(call.params.integer("limit").value_or(100), 1, 100);
  auto const timeout = std::clamp<std::int64_t>(call.params.integer("timeout").value_or(0), 0, kMaxPollTimeoutSeconds);
  if (call.params.has("allowed_updates")) {
    std::optional<boost::json::value> value;
    try {
      value = call.params.json("allowed_updates");
    } catch (std::invalid_argument const&) {
      throw bad_request("can't parse allowed_updates JSON object");
    }
    if (value && value->is_array()) {
      std::vector<std::string> kinds;
      for (auto const& item : value->get_array()) {
        if (item.is_string()) {
          kinds.emplace_back(item.get_string());
        }
      }
      allowed_updates_ = std::move(kinds);
    }
  }

  confirm_updates(offset);

  // A newer long poll ends the waiting one with 409, as Telegram does; the
  // caller wakes every waiting poll after each call, so it answers at once.
  if (active_poll_) {
    superseded_polls_.insert(*active_poll_);
    polls_.erase(*active_poll_);
    active_poll_.reset();
  }
  if (!updates_.empty() || timeout == 0) {
    return updates_reply(static_cast<std::size_t>(limit), call.now);
  }
  PollWait wait{.ticket = next_poll_ticket_++, .deadline = call.now + std::chrono::seconds(timeout)};
  polls_[wait.ticket] = {wait.deadline, static_cast<std::size_t>(limit)};
  active_poll_ = wait.ticket;
  return wait;
}

Outcome Engine::resume_poll(std::uint64_t ticket, Instant now) {
  if (superseded_polls_.erase(ticket) > 0) {
    return end_poll_in_conflict(ticket, kPollConflict);
  }
  auto it = polls_.find(ticket);
  if (it == polls_.end()) {
    return end_poll_in_conflict(ticket, kPollConflict);
  }
  auto const [deadline, limit] = it->second;
  if (webhook_active()) {
    polls_.erase(it);
    if (active_poll_ == ticket) {
      active_poll_.reset();
    }
    return end_poll_in_conflict(ticket, kWebhookConflict);
  }
  if (!updates_.empty() || now >= deadline) {
    polls_.erase(it);
    poll_records_.erase(ticket);
    if (active_poll_ == ticket) {
      active_poll_.reset();
    }
    return updates_reply(limit, now);
  }
  return PollWait{.ticket = ticket, .deadline = deadline};
}

ApiReply Engine::end_poll_in_conflict(std::uint64_t ticket, std::string_view description) {
  ++stats_.errors_by_code[409];
  auto record = poll_records_.find(ticket);
  if (record != poll_records_.end()) {
    // The call was recorded as ok while it waited. calls_ is in sequence order.
    auto call = std::lower_bound(calls_.begin(), calls_.end(), record->second,
                                 [](RecordedCall const& recorded, std::uint64_t sequence) {
                                   return recorded.sequence < sequence;
                                 });
    if (call != calls_.end() && call->sequence == record->second) {
      call->ok = false;
      call->error_code = 409;
      call->description = std::string(description);
    }
    poll_records_.erase(record);
  }
  return error_reply(ApiError(409, std::string(description)));
}

void Engine::cancel_poll(std::uint64_t ticket) {
  polls_.erase(ticket);
  superseded_polls_.erase(ticket);
  poll_records_.erase(ticket);
  if (active_poll_ == ticket) {
    active_poll_.reset();
  }
}

// ------------------------------------------------------------- webhook ----

void Engine::rebuild_webhook_queues() {
  order_queues_.clear();
  ready_keys_.clear();
  webhook_.in_flight = 0;
  if (!webhook_active()) {
    return;
  }
  for (auto& [id, update] : updates_) {
    update.in_flight = false;
    update.failures = 0;
    order_queues_[update.order_key].push_back(id);
  }
  for (auto const& [key, queue] : order_queues_) {
    ready_keys_.emplace(Instant{}, key);
  }
}

std::optional<WebhookDelivery> Engine::next_webhook_delivery(Instant now) {
  if (!webhook_active() || webhook_.in_flight >= static_cast<std::size_t>(webhook_.max_connections) ||
      ready_keys_.empty() || ready_keys_.begin()->first > now) {
    return std::nullopt;
  }
  auto const key = ready_keys_.begin()->second;
  ready_keys_.erase(ready_keys_.begin());
  auto queue = order_queues_.find(key);
  if (queue == order_queues_.end() || queue->second.empty()) {
    return next_webhook_delivery(now);
  }
  auto update_it = updates_.find(queue->second.front());
  if (update_it == updates_.end()) {
    queue->second.pop_front();
    if (!queue->second.empty()) {
      ready_keys_.emplace(now, key);
    }
    return next_webhook_delivery(now);
  }
  auto& update = update_it->second;
  update.in_flight = true;
  ++webhook_.in_flight;
  if (!update.delivered) {
    update.delivered = true;
    ++stats_.updates_delivered;
    if (update.reply_chat_id != 0) {
      auto chat = chats_.find(update.reply_chat_id);
      if (chat != chats_.end() && !chat->second.awaiting_reply_since) {
        chat->second.awaiting_reply_since = now;
      }
    }
    if (!update.callback_query_id.empty()) {
      auto query = callback_queries_.find(update.callback_query_id);
      if (query != callback_queries_.end()) {
        query->second.delivered = true;
        query->second.delivered_at = now;
      }
    }
  }
  return WebhookDelivery{
      .generation = webhook_.generation,
      .update_id = update.update_id,
      .url = webhook_.url,
      .secret_token = webhook_.secret_token,
      .body = update.body,
  };
}

std::optional<Instant> Engine::next_webhook_wakeup() const {
  if (!webhook_active() || webhook_.in_flight >= static_cast<std::size_t>(webhook_.max_connections) ||
      ready_keys_.empty()) {
    return std::nullopt;
  }
  return ready_keys_.begin()->first;
}

void Engine::finish_webhook_delivery(WebhookDelivery const& delivery, WebhookResult const& result, Instant now) {
  // A result from before the last setWebhook/deleteWebhook, or a second
  // result for one attempt, changes nothing.
  auto it = updates_.find(delivery.update_id);
  if (delivery.generation != webhook_.generation || it == updates_.end() || !it->second.in_flight) {
    return;
  }
  --webhook_.in_flight;
  ++stats_.webhook_deliveries;
  auto& update = it->second;
  auto const key = update.order_key;
  update.in_flight = false;

  if (result.ok) {
    forget_update(delivery.update_id, true);
    auto queue = order_queues_.find(key);
    if (queue != order_queues_.end()) {
      if (!queue->second.empty() && queue->second.front() == delivery.update_id) {
        queue->second.pop_front();
      }
      if (queue->second.empty()) {
        order_queues_.erase(queue);
      } else {
        ready_keys_.emplace(now, key);
      }
    }
    return;
  }

  ++stats_.webhook_failures;
  webhook_.last_error_date = unix_time(now);
  webhook_.last_error_message = result.error;
  ++update.failures;
  Clock::duration delay;
  if (result.retry_after > 0) {
    delay = std::chrono::seconds(std::min(result.retry_after, kMaxWebhookRetryAfterSeconds));
  } else {
    auto factor = std::pow(2.0, std::min(update.failures - 1, 30));
    auto scaled = std::chrono::duration<double, std::milli>(options_.webhook.retry_initial) * factor;
    delay = std::chrono::duration_cast<Clock::duration>(
        std::min(scaled, std::chrono::duration<double, std::milli>(options_.webhook.retry_max)));
  }
  update.retry_at = now + delay;
  ready_keys_.emplace(update.retry_at, key);
}

boost::json::value Engine::set_webhook(CallContext& call, bool remove) {
  auto url = remove ? std::string() : call.params.text("url").value_or("");
  bool const drop_pending = call.params.boolean("drop_pending_updates");
  auto drop_all = [&] {
    while (!updates_.empty()) {
      forget_update(updates_.begin()->first, false);
    }
  };

  if (url.empty()) {
    call.description = webhook_active() ? "Webhook was deleted" : "Webhook is already deleted";
    if (drop_pending) {
      drop_all();
    }
    if (webhook_active()) {
      WebhookState removed;
      removed.generation = webhook_.generation + 1;
      webhook_ = std::move(removed);
      rebuild_webhook_queues();
    }
    return true;
  }

  auto scheme_end = url.find("://");
  auto scheme = scheme_end == std::string::npos ? std::string() : ascii_lower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") {
    throw bad_request("bad webhook: An HTTPS URL must be provided for webhook");
  }
  auto authority = url.substr(scheme_end + 3, url.find('/', scheme_end + 3) - (scheme_end + 3));
  if (authority.empty()) {
    throw bad_request("bad webhook: Failed to resolve host: Name or service not known");
  }
  if (options_.webhook.require_https) {
    if (scheme != "https") {
      throw bad_request("bad webhook: An HTTPS URL must be provided for webhook");
    }
    auto colon = authority.rfind(':');
    auto port = colon == std::string::npos ? std::string("443") : authority.substr(colon + 1);
    if (port != "443" && port != "80" && port != "88" && port != "8443") {
      throw bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443");
    }
  }
  auto secret = call.params.text("secret_token").value_or("");
  if (secret.size() > 256 || !std::all_of(secret.begin(), secret.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      })) {
    throw bad_request("secret token contains unallowed characters");
  }
  auto max_connections = std::clamp<std::int64_t>(call.params.integer("max_connections").value_or(40), 1, 100);
  if (call.params.has("allowed_updates")) {
    try {
      auto value = call.params.json("allowed_updates");
      if (value && value->is_array()) {
        std::vector<std::string> kinds;
        for (auto const& item : value->get_array()) {
          if (item.is_string()) {
            kinds.emplace_back(item.get_string());
          }
        }
        allowed_updates_ = std::move(kinds);
      }
    } catch (std::invalid_argument const&) {
      throw bad_request("can't parse allowed_updates JSON object");
    }
  }

  bool const unchanged = webhook_.url == url && webhook_.secret_token == secret &&
                         webhook_.max_connections == max_connections && !drop_pending;
  call.description = unchanged ? "Webhook is already set" : "Webhook was set";
  if (drop_pending) {
    drop_all();
  }
  if (!unchanged) {
    webhook_.url = url;
    webhook_.secret_token = secret;
    webhook_.max_connections = max_connections;
    webhook_.ip_address = call.params.text("ip_address").value_or("");
    ++webhook_.generation;
    rebuild_webhook_queues();
  }
  return true;
}

boost::json::value Engine::get_webhook_info(CallContext&) {
  boost::json::object info;
  info["url"] = webhook_.url;
  info["has_custom_certificate"] = false;
  info["pending_update_count"] = updates_.size();
  if (webhook_active()) {
    if (!webhook_.ip_address.empty()) {
      info["ip_address"] = webhook_.ip_address;
    }
    if (webhook_.last_error_date != 0) {
      info["last_error_date"] = webhook_.last_error_date;
      info["last_error_message"] = webhook_.last_error_message;
    }
    info["max_connections"] = webhook_.max_connections;
  }
  if (allowed_updates_) {
    boost::json::array kinds;
    for (auto const& kind : *allowed_updates_) {
      kinds.emplace_back(kind);
    }
    info["allowed_updates"] = std::move(kinds);
  }
  return info;
}

// ------------------------------------------------------------ dispatch ----

ApiReply Engine::not_found_reply() {
  return error_reply(ApiError(404, "Not Found"));
}

Outcome Engine::handle(ApiRequest request, Instant now) {
  auto const method_key = ascii_lower(request.method);
  auto const canonical = canonical_method(method_key);
  std::string const method_name = canonical ? std::string(*canonical) : request.method;
  CallContext call(request, now);
  if (auto chat_id = call.params.integer("chat_id")) {
    call.chat_id = *chat_id;
  }

  ApiReply reply;
  if (request.token != options_.bot.token) {
    reply = error_reply(ApiError(401, "Unauthorized"));
  } else {
    try {
      if (method_key == "getupdates") {
        auto outcome = begin_get_updates(call);
        if (auto* wait = std::get_if<PollWait>(&outcome)) {
          ApiReply pending{200, {}};
          record_call(method_name, std::move(request.params), 0, pending, now);
          if (options_.max_recorded_calls > 0) {
            poll_records_[wait->ticket] = stats_.calls;
          }
          return *wait;
        }
        reply = std::get<ApiReply>(std::move(outcome));
      } else {
        auto result = dispatch(method_key, call);
        if (!call.raw_result.empty()) {
          constexpr std::string_view kOkPrefix = R"({"ok":true,"result":)";
          std::string body;
          body.reserve(kOkPrefix.size() + call.raw_result.size() + 1);
          body.append(kOkPrefix).append(call.raw_result).push_back('}');
          reply = ApiReply{200, std::move(body)};
        } else {
          reply = ApiReply{200, ok_body(std::move(result), call.description)};
        }
      }
    } catch (ApiError const& error) {
      reply = error_reply(error);
    }
  }
  record_call(method_name, std::move(request.params), call.chat_id, reply, now);
  return reply;
}

boost::json::value Engine::dispatch(std::string const& method_key, CallContext& call) {
  if (method_key == "getme") {
    return get_me(call);
  }
  if (method_key == "sendmessage") {
    return send_message(call);
  }
  if (method_key == "setwebhook") {
    return set_webhook(call, false);
  }
  if (method_key == "deletewebhook") {
    return set_webhook(call, true);
  }
  if (method_key == "getwebhookinfo") {
    return get_webhook_info(call);
  }
  if (method_key == "editmessagetext") {
    return edit_message_text(call);
  }
  if (method_key == "deletemessage") {
    return delete_message(call);
  }
  if (method_key == "answercallbackquery") {
    return answer_callback_query(call);
  }
  if (method_key == "sendchataction") {
    return send_chat_action(call);
  }
  if (method_key == "copymessage") {
    return copy_or_forward(call, false);
  }
  if (method_key == "forwardmessage") {
    return copy_or_forward(call, true);
  }
  if (method_key == "sendphoto") {
    return send_media(call, "photo");
  }
  if (method_key == "senddocument") {
    return send_media(call, "document");
  }
  if (method_key == "getchat") {
    return get_chat(call);
  }
  if (method_key == "setmycommands") {
    return set_my_commands(call);
  }
  if (method_key == "getmycommands") {
    return get_my_commands(call);
  }
  if (method_key == "deletemycommands") {
    return delete_my_commands(call);
  }
  if (canonical_method(method_key)) {
    throw ApiError(501, "Not Implemented: sluice-sandbox does not implement " +
                            std::string(*canonical_method(method_key)));
  }
  throw ApiError(404, "Not Found");
}

boost::json::value Engine::get_me(CallContext&) {
  boost::json::object me;
  me["id"] = options_.bot.id();
  me["is_bot"] = true;
  me["first_name"] = options_.bot.first_name;
  me["username"] = options_.bot.username;
  me["can_join_groups"] = options_.bot.can_join_groups;
  me["can_read_all_group_messages"] = options_.bot.can_read_all_group_messages;
  me["supports_inline_queries"] = options_.bot.supports_inline_queries;
  me["can_connect_to_business"] = false;
  me["has_main_web_app"] = false;
  return me;
}

// --------------------------------------------------------------- stats ----

void Engine::record_call(std::string const& method, boost::json::object params, std::int64_t chat_id,
                         ApiReply const& reply, Instant now) {
  ++stats_.calls;
  ++stats_.calls_by_method[method];
  bool const ok = reply.status == 200;
  RecordedCall call;
  if (!ok) {
    ++stats_.errors_by_code[static_cast<int>(reply.status)];
    if (reply.status == 429) {
      ++stats_.responses_429;
    }
    boost::system::error_code ec;
    auto body = boost::json::parse(reply.body, ec);
    if (!ec && body.is_object()) {
      call.description = json_string(body.get_object(), "description");
    }
  }
  if (options_.max_recorded_calls == 0) {
    return;
  }
  call.sequence = stats_.calls;
  call.method = method;
  call.chat_id = chat_id;
  call.params = std::move(params);
  call.ok = ok;
  call.error_code = ok ? 0 : static_cast<int>(reply.status);
  call.time = std::chrono::duration<double>(now - start_).count();
  calls_.push_back(std::move(call));
  while (calls_.size() > options_.max_recorded_calls) {
    calls_.pop_front();
  }
}

void Engine::record_fault(FaultKind kind) {
  ++stats_.faults_by_kind[std::string(fault_kind_name(kind))];
}

void Engine::note_bot_activity(ChatState& chat, std::optional<std::int64_t> replied_to, Instant now) {
  if (chat.awaiting_reply_since) {
    stats_.reply_latency.add(now - *chat.awaiting_reply_since);
    chat.awaiting_reply_since.reset();
  }
  if (!replied_to) {
    return;
  }
  if (*replied_to < chat.last_replied_to) {
    ++stats_.order_violations;
    if (stats_.order_violation_samples.size() < kMaxViolationSamples) {
      stats_.order_violation_samples.push_back(OrderViolation{
          .chat_id = chat.chat.id,
          .message_id = *replied_to,
          .after_message_id = chat.last_replied_to,
      });
    }
    return;
  }
  chat.last_replied_to = *replied_to;
}

boost::json::object Engine::stats_json(Instant now) const {
  boost::json::object updates;
  updates["pushed"] = stats_.updates_pushed;
  updates["delivered"] = stats_.updates_delivered;
  updates["confirmed"] = stats_.updates_confirmed;
  updates["pending"] = updates_.size();
  updates["dropped"] = stats_.updates_dropped;
  updates["filtered"] = stats_.updates_filtered;

  boost::json::object by_method;
  for (auto const& [method, count] : stats_.calls_by_method) {
    by_method[method] = count;
  }
  boost::json::object errors;
  for (auto const& [code, count] : stats_.errors_by_code) {
    errors[std::to_string(code)] = count;
  }
  boost::json::object calls;
  calls["total"] = stats_.calls;
  calls["by_method"] = std::move(by_method);
  calls["errors"] = std::move(errors);

  boost::json::object faults;
  std::uint64_t fault_total = 0;
  for (auto const& [kind, count] : stats_.faults_by_kind) {
    faults[kind] = count;
    fault_total += count;
  }
  faults["total"] = fault_total;

  boost::json::array samples;
  for (auto const& violation : stats_.order_violation_samples) {
    boost::json::object sample;
    sample["chat_id"] = violation.chat_id;
    sample["message_id"] = violation.message_id;
    sample["after_message_id"] = violation.after_message_id;
    samples.push_back(std::move(sample));
  }
  boost::json::object order;
  order["total"] = stats_.order_violations;
  order["samples"] = std::move(samples);

  boost::json::object webhook;
  webhook["url"] = webhook_.url;
  webhook["deliveries"] = stats_.webhook_deliveries;
  webhook["failures"] = stats_.webhook_failures;
  webhook["in_flight"] = webhook_.in_flight;
  if (!webhook_.last_error_message.empty()) {
    webhook["last_error_message"] = webhook_.last_error_message;
  }

  boost::json::object result;
  result["uptime_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(now - start_).count();
  result["updates"] = std::move(updates);
  result["calls"] = std::move(calls);
  result["responses_429"] = stats_.responses_429;
  result["faults"] = std::move(faults);
  result["order_violations"] = std::move(order);
  result["reply_latency_ms"] = stats_.reply_latency.to_json_ms();
  result["webhook"] = std::move(webhook);
  return result;
}

boost::json::array Engine::calls_json(std::optional<std::string_view> method,
                                      std::optional<std::int64_t> chat_id) const {
  boost::json::array result;
  auto const method_key = method ? ascii_lower(*method) : std::string();
  for (auto const& call : calls_) {
    if (method && ascii_lower(call.method) != method_key) {
      continue;
    }
    if (chat_id && call.chat_id != *chat_id) {
      continue;
    }
    boost::json::object object;
    object["sequence"] = call.sequence;
    object["time_ms"] = static_cast<std::int64_t>(call.time * 1000);
    object["method"] = call.method;
    object["chat_id"] = call.chat_id;
    object["params"] = call.params;
    object["ok"] = call.ok;
    if (!call.ok) {
      object["error_code"] = call.error_code;
      object["description"] = call.description;
    }
    result.push_back(std::move(object));
  }
  return result;
}

bool Engine::evaluate_condition(std::string_view condition) const {
  if (condition == "all_confirmed") {
    return updates_.empty();
  }
  static constexpr std::string_view kOperators[] = {">=", "<=", "==", "!=", ">", "<"};
  std::size_t op_at = std::string_view::npos;
  std::string_view op;
  for (auto candidate : kOperators) {
    auto at = condition.find(candidate);
    if (at != std::string_view::npos && (op_at == std::string_view::npos || at < op_at ||
                                         (at == op_at && candidate.size() > op.size()))) {
      op_at = at;
      op = candidate;
    }
  }
  if (op_at == std::string_view::npos) {
    throw std::invalid_argument("condition \"" + std::string(condition) +
                                "\" has no comparison; expected all_confirmed or <counter><op><number>");
  }
  auto name = condition.substr(0, op_at);
  auto number_text = condition.substr(op_at + op.size());
  std::uint64_t number = 0;
  auto [ptr, ec] = std::from_chars(number_text.data(), number_text.data() + number_text.size(), number);
  if (ec != std::errc{} || ptr != number_text.data() + number_text.size()) {
    throw std::invalid_argument("condition \"" + std::string(condition) + "\" does not end in a whole number");
  }

  std::uint64_t value = 0;
  if (name == "pushed") {
    value = stats_.updates_pushed;
  } else if (name == "delivered") {
    value = stats_.updates_delivered;
  } else if (name == "confirmed") {
    value = stats_.updates_confirmed;
  } else if (name == "pending") {
    value = updates_.size();
  } else if (name == "dropped") {
    value = stats_.updates_dropped;
  } else if (name == "filtered") {
    value = stats_.updates_filtered;
  } else if (name == "calls") {
    value = stats_.calls;
  } else if (name.starts_with("calls.")) {
    auto key = ascii_lower(name.substr(std::string_view("calls.").size()));
    auto canonical = canonical_method(key);
    auto it = stats_.calls_by_method.find(canonical ? std::string(*canonical) : std::string(name.substr(6)));
    value = it == stats_.calls_by_method.end() ? 0 : it->second;
  } else if (name.starts_with("errors.")) {
    int code = 0;
    auto digits = name.substr(std::string_view("errors.").size());
    std::from_chars(digits.data(), digits.data() + digits.size(), code);
    auto it = stats_.errors_by_code.find(code);
    value = it == stats_.errors_by_code.end() ? 0 : it->second;
  } else if (name == "responses_429") {
    value = stats_.responses_429;
  } else if (name == "faults") {
    for (auto const& [kind, count] : stats_.faults_by_kind) {
      value += count;
    }
  } else if (name == "order_violations") {
    value = stats_.order_violations;
  } else if (name == "webhook_deliveries") {
    value = stats_.webhook_deliveries;
  } else if (name == "webhook_failures") {
    value = stats_.webhook_failures;
  } else if (name == "replies") {
    value = stats_.reply_latency.count();
  } else {
    throw std::invalid_argument("unknown counter \"" + std::string(name) +
                                "\" in condition; see docs/sandbox.md for the list");
  }

  if (op == ">=") {
    return value >= number;
  }
  if (op == "<=") {
    return value <= number;
  }
  if (op == "==") {
    return value == number;
  }
  if (op == "!=") {
    return value != number;
  }
  if (op == ">") {
    return value > number;
  }
  return value < number;
}

}  // namespace sluice::sandbox
