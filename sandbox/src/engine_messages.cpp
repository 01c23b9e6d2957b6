// Engine: the message methods (send, edit, delete, copy, forward, media),
// answerCallbackQuery, sendChatAction, getChat and the bot's commands.

#include <sluice/sandbox/engine.hpp>

#include <algorithm>
#include <array>
#include <charconv>

#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "engine_internal.hpp"

namespace sluice::sandbox {
namespace {

// Telegram's limits on message texts and captions, counted in UTF-16 code
// units after markup parsing and trimming.
constexpr std::size_t kMaxTextLength = 4096;
constexpr std::size_t kMaxCaptionLength = 1024;
constexpr std::size_t kMaxCallbackDataBytes = 64;
constexpr std::size_t kMaxCallbackAnswerLength = 200;
// Stack buffer for building one message's JSON; larger messages spill to
// the heap. 8 KiB fits a typical message without any allocation.
constexpr std::size_t kMessageBufferBytes = 8 * 1024;
// Largest side of each photo size Telegram generates for bots; the largest
// size is the photo itself, scaled down to 1280 if needed.
constexpr std::array<std::int64_t, 4> kPhotoBoxes = {90, 320, 800, 1280};

constexpr std::array<std::string_view, 11> kChatActions = {
    "typing",         "upload_photo", "record_video", "upload_video",      "record_voice",     "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
};

// Inline keyboard button fields that give a button its action.
constexpr std::array<std::string_view, 10> kButtonActions = {
    "callback_data", "url", "switch_inline_query", "switch_inline_query_current_chat", "callback_game",
    "pay",           "login_url", "web_app",         "copy_text", "switch_inline_query_chosen_chat",
};

// Message fields that are content (copied by copyMessage and forwardMessage).
bool is_content_field(std::string_view key) {
  static constexpr std::array<std::string_view, 14> kNotContent = {
      "message_id",      "message_thread_id", "from",       "sender_chat", "chat",        "date",
      "edit_date",       "reply_to_message",  "reply_markup", "forward_origin", "forward_from",
      "forward_from_chat", "forward_date",    "is_topic_message",
  };
  return std::find(kNotContent.begin(), kNotContent.end(), key) == kNotContent.end() &&
         key != "link_preview_options" && key != "forward_from_message_id" && key != "forward_signature" &&
         key != "forward_sender_name" && key != "author_signature";
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::string guess_mime_type(std::string_view file_name, std::string_view part_type) {
  auto dot = file_name.rfind('.');
  auto extension = dot == std::string_view::npos ? std::string() : ascii_lower(file_name.substr(dot + 1));
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kTypes = {{
      {"txt", "text/plain"},
      {"csv", "text/csv"},
      {"json", "application/json"},
      {"pdf", "application/pdf"},
      {"zip", "application/zip"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"mp4", "video/mp4"},
      {"ogg", "audio/ogg"},
  }};
  for (auto const& [candidate, type] : kTypes) {
    if (candidate == extension) {
      return std::string(type);
    }
  }
  if (!part_type.empty() && part_type != "application/octet-stream") {
    return std::string(part_type);
  }
  return {};
}

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : bytes) {
    buffer = (buffer << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 0x3F];
    }
  }
  if (bits > 0) {
    out += kAlphabet[(buffer << (6 - bits)) & 0x3F];
  }
  return out;
}

// Validates a reply_markup parameter. Returns the inline keyboard to show on
// the message, or an empty object for other keyboards (Telegram shows only
// inline keyboards in the returned Message).
boost::json::object check_reply_markup(boost::json::value const& markup, bool& has_callback, std::string& first_data) {
  if (!markup.is_object()) {
    throw bad_request("can't parse reply keyboard markup JSON object");
  }
  auto const& object = markup.get_object();
  auto const* keyboard = object.if_contains("inline_keyboard");
  if (keyboard == nullptr) {
    if (object.contains("keyboard") || object.contains("remove_keyboard") || object.contains("force_reply")) {
      return {};
    }
    throw bad_request("can't parse reply keyboard markup JSON object");
  }
  if (!keyboard->is_array()) {
    throw bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array");
  }
  for (auto const& row : keyboard->get_array()) {
    if (!row.is_array()) {
      throw bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays");
    }
    for (auto const& button : row.get_array()) {
      if (!button.is_object()) {
        throw bad_request("InlineKeyboardButton must be an Object");
      }
      auto const& fields = button.get_object();
      auto const* text = fields.if_contains("text");
      if (text == nullptr || !text->is_string()) {
        throw bad_request("can't find field \"text\"");
      }
      bool has_action = false;
      for (auto action : kButtonActions) {
        has_action = has_action || fields.contains(action);
      }
      if (!has_action) {
        throw bad_request("text buttons are unallowed in the inline keyboard");
      }
      if (auto const* data = fields.if_contains("callback_data")) {
        if (!data->is_string() || data->get_string().empty() || data->get_string().size() > kMaxCallbackDataBytes) {
          throw bad_request("BUTTON_DATA_INVALID");
        }
        if (!has_callback) {
          has_callback = true;
          first_data = std::string(data->get_string());
        }
      }
    }
  }
  boost::json::object inline_keyboard;
  inline_keyboard["inline_keyboard"] = *keyboard;
  return inline_keyboard;
}

}  // namespace

FormattedText format_text(Engine::CallContext& call, std::string_view text, std::string_view entities_param) {
  if (!is_valid_utf8(text)) {
    throw bad_request("strings must be encoded in UTF-8");
  }
  auto const mode = ascii_lower(call.params.text("parse_mode").value_or(""));
  MarkupResult parsed;
  if (mode.empty() || mode == "none") {
    FormattedText plain{std::string(text), {}};
    if (auto const* value = call.params.raw().if_contains(entities_param); value != nullptr && !value->is_null()) {
      auto entities = entities_from_json(*value, utf16_length(text));
      if (!entities) {
        throw bad_request("can't parse entities JSON object");
      }
      plain.entities = std::move(*entities);
    }
    parsed = std::move(plain);
  } else if (mode == "html") {
    parsed = parse_html(text);
  } else if (mode == "markdownv2") {
    parsed = parse_markdown_v2(text);
  } else if (mode == "markdown") {
    parsed = parse_markdown(text);
  } else {
    throw bad_request("unsupported parse_mode");
  }
  if (auto const* error = std::get_if<MarkupError>(&parsed)) {
    throw bad_request("can't parse entities: " + error->message);
  }
  auto formatted = std::get<FormattedText>(std::move(parsed));
  trim_formatted_text(formatted);
  detect_entities(formatted);
  return formatted;
}

std::optional<std::pair<std::int64_t, std::int64_t>> image_dimensions(std::string_view data) {
  auto byte = [&](std::size_t at) -> std::uint32_t { return static_cast<unsigned char>(data[at]); };
  auto be16 = [&](std::size_t at) { return (byte(at) << 8) | byte(at + 1); };
  auto be32 = [&](std::size_t at) { return (be16(at) << 16) | be16(at + 2); };
  auto le16 = [&](std::size_t at) { return byte(at) | (byte(at + 1) << 8); };
  if (data.size() >= 24 && data.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) {
    return std::pair<std::int64_t, std::int64_t>{be32(16), be32(20)};
  }
  if (data.size() >= 10 && (data.starts_with("GIF87a") || data.starts_with("GIF89a"))) {
    return std::pair<std::int64_t, std::int64_t>{le16(6), le16(8)};
  }
  if (data.size() >= 30 && data.starts_with("RIFF") && data.substr(8, 4) == "WEBP") {
    auto chunk = data.substr(12, 4);
    if (chunk == "VP8X") {
      auto width = 1 + (byte(24) | (byte(25) << 8) | (byte(26) << 16));
      auto height = 1 + (byte(27) | (byte(28) << 8) | (byte(29) << 16));
      return std::pair<std::int64_t, std::int64_t>{width, height};
    }
    if (chunk == "VP8 ") {
      return std::pair<std::int64_t, std::int64_t>{le16(26) & 0x3FFF, le16(28) & 0x3FFF};
    }
    if (chunk == "VP8L") {
      auto bits = byte(21) | (byte(22) << 8) | (byte(23) << 16) | (byte(24) << 24);
      return std::pair<std::int64_t, std::int64_t>{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
    }
    return std::nullopt;
  }
  if (data.size() >= 4 && byte(0) == 0xFF && byte(1) == 0xD8) {
    // Walk the JPEG segments to the first start-of-frame marker.
    std::size_t at = 2;
    while (at + 9 < data.size()) {
      if (byte(at) != 0xFF) {
        return std::nullopt;
      }
      auto marker = byte(at + 1);
      if (marker == 0xFF) {
        ++at;
        continue;
      }
      auto length = be16(at + 2);
      bool const is_frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (is_frame) {
        return std::pair<std::int64_t, std::int64_t>{be16(at + 7), be16(at + 5)};
      }
      at += 2 + length;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------- chat access ----

Engine::ChatState& Engine::resolve_chat_param(CallContext& call, std::string_view name) {
  std::optional<std::int64_t> id;
  auto const* raw = call.params.raw().if_contains(name);
  if (raw != nullptr && raw->is_int64()) {
    // The common case of a JSON body needs no conversion to text and back.
    id = raw->get_int64();
  } else {
    auto text = call.params.text(name);
    if (!text || text->empty()) {
      throw bad_request(std::string(name) + " is empty");
    }
    if ((*text)[0] == '@') {
      auto it = usernames_.find(ascii_lower(std::string_view(*text).substr(1)));
      if (it != usernames_.end()) {
        id = it->second;
      }
    } else {
      id = parse_int(*text);
    }
  }
  auto chat = id ? chats_.find(*id) : chats_.end();
  if (chat == chats_.end()) {
    throw bad_request("chat not found");
  }
  if (name == "chat_id") {
    call.chat_id = chat->first;
  }
  return chat->second;
}

Engine::ChatState& Engine::resolve_target_chat(CallContext& call, bool for_sending) {
  auto& state = resolve_chat_param(call, "chat_id");
  auto const& chat = state.chat;
  if (!for_sending) {
    return state;
  }
  if (chat.type == ChatType::group && chat.migrated_to_chat_id != 0) {
    auto error = bad_request("group chat was upgraded to a supergroup chat");
    error.migrate_to_chat_id = chat.migrated_to_chat_id;
    throw error;
  }
  if (chat.type == ChatType::private_chat) {
    auto user = users_.find(chat.id);
    if (user != users_.end() && user->second.deactivated) {
      throw ApiError(403, "Forbidden: user is deactivated");
    }
    if (user != users_.end() && user->second.blocked_bot) {
      throw ApiError(403, "Forbidden: bot was blocked by the user");
    }
  } else if (chat.bot_removed) {
    switch (chat.type) {
      case ChatType::group:
        throw ApiError(403, "Forbidden: bot was kicked from the group chat");
      case ChatType::supergroup:
        throw ApiError(403, "Forbidden: bot was kicked from the supergroup chat");
      default:
        throw ApiError(403, "Forbidden: bot is not a member of the channel chat");
    }
  }
  return state;
}

void Engine::check_flood(CallContext& call, ChatState const& chat) {
  auto retry_after =
      flood_.admit(chat.chat.id, chat.chat.is_group_like(), call.params.boolean("allow_paid_broadcast"), call.now);
  if (retry_after) {
    ApiError error(429, "Too Many Requests: retry after " + std::to_string(*retry_after));
    error.retry_after = *retry_after;
    throw error;
  }
}

std::int64_t Engine::allocate_message_id(ChatState& chat) {
  // Private chats and basic groups share one message id sequence per bot
  // account in Telegram; supergroups and channels number their own.
  if (chat.chat.type == ChatType::supergroup || chat.chat.type == ChatType::channel) {
    return chat.next_message_id++;
  }
  return shared_message_id_++;
}

boost::json::object Engine::new_message_json(ChatState& chat, std::int64_t message_id, Instant now, bool from_bot,
                                             boost::json::storage_ptr storage) {
  boost::json::object message(storage);
  message.reserve(12);
  message["message_id"] = message_id;
  if (from_bot && chat.chat.type == ChatType::channel) {
    message["sender_chat"] = chat_json(chat.chat, storage);
  } else if (from_bot) {
    message["from"] = bot_user_json(storage);
  }
  message["chat"] = chat_json(chat.chat, storage);
  message["date"] = unix_time(now);
  return message;
}

Engine::StoredMessage& Engine::store_message(ChatState& chat, std::int64_t message_id,
                                             boost::json::object const& json, bool from_bot) {
  auto& stored = chat.messages[message_id];
  stored.json = boost::json::serialize(json);
  stored.from_bot = from_bot;
  stored.has_callback_button = false;
  stored.first_callback_data.clear();
  if (auto const* markup = json.if_contains("reply_markup")) {
    std::string data;
    bool has_callback = false;
    try {
      check_reply_markup(*markup, has_callback, data);
    } catch (ApiError const&) {
    }
    stored.has_callback_button = has_callback;
    stored.first_callback_data = std::move(data);
  }
  while (chat.messages.size() > options_.max_messages_per_chat) {
    chat.messages.erase(chat.messages.begin());
  }
  return stored;
}

Engine::StoredMessage* Engine::find_message(ChatState& chat, std::int64_t message_id) {
  auto it = chat.messages.find(message_id);
  return it == chat.messages.end() ? nullptr : &it->second;
}

std::optional<std::int64_t> Engine::reply_target(CallContext& call, ChatState& chat, boost::json::object& message) {
  std::optional<std::int64_t> target = call.params.integer("reply_to_message_id");
  bool allow_without_reply = call.params.boolean("allow_sending_without_reply");
  if (call.params.has("reply_parameters")) {
    std::optional<boost::json::value> parameters;
    try {
      parameters = call.params.json("reply_parameters");
    } catch (std::invalid_argument const&) {
      throw bad_request("can't parse reply parameters JSON object");
    }
    if (!parameters || !parameters->is_object()) {
      throw bad_request("can't parse reply parameters JSON object");
    }
    auto const& object = parameters->get_object();
    auto const* id = object.if_contains("message_id");
    if (id == nullptr || !(id->is_int64() || id->is_uint64())) {
      throw bad_request("can't parse reply parameters JSON object");
    }
    target = id->to_number<std::int64_t>();
    if (auto const* allow = object.if_contains("allow_sending_without_reply"); allow != nullptr && allow->is_bool()) {
      allow_without_reply = allow->get_bool();
    }
  }
  if (!target || *target == 0) {
    return std::nullopt;
  }
  auto* replied = find_message(chat, *target);
  if (replied == nullptr) {
    if (allow_without_reply) {
      return std::nullopt;
    }
    throw bad_request("message to be replied not found");
  }
  auto quoted = boost::json::parse(replied->json, message.storage());
  quoted.as_object().erase("reply_to_message");
  message["reply_to_message"] = std::move(quoted);
  return target;
}

void Engine::attach_reply_markup(CallContext& call, boost::json::object& message, StoredMessage* stored) {
  (void)stored;
  if (!call.params.has("reply_markup")) {
    return;
  }
  std::optional<boost::json::value> markup;
  try {
    markup = call.params.json("reply_markup");
  } catch (std::invalid_argument const&) {
    throw bad_request("can't parse reply keyboard markup JSON object");
  }
  if (!markup) {
    return;
  }
  bool has_callback = false;
  std::string data;
  auto inline_keyboard = check_reply_markup(*markup, has_callback, data);
  if (!inline_keyboard.empty()) {
    message["reply_markup"] = std::move(inline_keyboard);
  }
}

// ------------------------------------------------------------- methods ----

boost::json::value Engine::send_message(CallContext& call) {
  auto raw_text = call.params.text("text").value_or("");
  if (raw_text.empty()) {
    throw bad_request("message text is empty");
  }
  auto formatted = format_text(call, raw_text, "entities");
  auto& chat = resolve_target_chat(call, true);
  if (formatted.text.empty()) {
    throw bad_request("message text is empty");
  }
  if (utf16_length(formatted.text) > kMaxTextLength) {
    throw bad_request("message is too long");
  }

  unsigned char buffer[kMessageBufferBytes];
  boost::json::monotonic_resource resource(buffer, sizeof buffer);
  boost::json::storage_ptr storage(&resource);
  boost::json::object message = new_message_json(chat, 0, call.now, true, storage);
  auto const replied_to = reply_target(call, chat, message);
  message["text"] = formatted.text;
  if (!formatted.entities.empty()) {
    message["entities"] = entities_to_json(formatted.entities, storage);
  }
  attach_reply_markup(call, message, nullptr);
  if (chat.chat.is_forum && call.params.integer("message_thread_id").value_or(0) != 0) {
    message["message_thread_id"] = *call.params.integer("message_thread_id");
    message["is_topic_message"] = true;
  }
  check_flood(call, chat);

  auto const message_id = allocate_message_id(chat);
  message["message_id"] = message_id;
  auto& stored = store_message(chat, message_id, message, true);
  note_bot_activity(chat, replied_to, call.now);
  call.raw_result = stored.json;
  return nullptr;
}

std::string Engine::new_file_id(std::string_view kind, std::string& unique_id) {
  // Telegram's ids are opaque base64url strings; these keep a similar shape
  // (a type prefix and a counter) so that clients treat them alike.
  auto number = next_file_number_++;
  std::string raw(16, '\0');
  for (int i = 0; i < 8; ++i) {
    raw[static_cast<std::size_t>(i)] = static_cast<char>((number >> (8 * i)) & 0xFF);
  }
  auto noise = random_();
  for (int i = 0; i < 8; ++i) {
    raw[static_cast<std::size_t>(8 + i)] = static_cast<char>((noise >> (8 * i)) & 0xFF);
  }
  unique_id = (kind == "photo" ? "AQAD" : "AgAD") + base64url(raw.substr(0, 10));
  return (kind == "photo" ? "AgACAgIAAxkDAAI" : "BQACAgIAAxkDAAI") + base64url(raw) + "AAQ";
}

boost::json::value Engine::send_media(CallContext& call, std::string const& kind) {
  auto const type_name = kind == "photo" ? std::string("Photo") : std::string("Document");

  // Find the file: an upload, attach://<part>, a URL or a file_id.
  UploadedFile const* upload = nullptr;
  bool from_url = false;
  std::string reused_id;
  if (auto file = call.request.files.find(kind); file != call.request.files.end()) {
    upload = &file->second;
  } else if (auto reference = call.params.text(kind); reference && !reference->empty()) {
    if (reference->starts_with("attach://")) {
      auto part = call.request.files.find(reference->substr(std::string_view("attach://").size()));
      if (part == call.request.files.end()) {
        throw bad_request("wrong file identifier/HTTP URL specified");
      }
      upload = &part->second;
    } else if (reference->starts_with("http://") || reference->starts_with("https://")) {
      // NOTE: URLs are not downloaded; the sandbox invents a small file.
      static UploadedFile const kUrlFile{.filename = "file", .content_type = "", .data = std::string(1024, '\0')};
      upload = &kUrlFile;
      from_url = true;
    } else {
      auto stored = files_.find(*reference);
      if (stored == files_.end()) {
        throw bad_request("wrong file identifier/HTTP URL specified");
      }
      if (stored->second.kind != kind) {
        auto stored_type = stored->second.kind == "photo" ? "Photo" : "Document";
        throw bad_request("can't use file of type " + std::string(stored_type) + " as " + type_name);
      }
      reused_id = *reference;
    }
  } else {
    throw bad_request("there is no " + kind + " in the request");
  }

  std::optional<std::pair<std::int64_t, std::int64_t>> dimensions;
  if (upload != nullptr) {
    if (upload->data.empty()) {
      throw bad_request("file must be non-empty");
    }
    if (kind == "photo" && !from_url) {
      dimensions = image_dimensions(upload->data);
      if (!dimensions || dimensions->first <= 0 || dimensions->second <= 0) {
        throw bad_request("IMAGE_PROCESS_FAILED");
      }
    }
  }
  auto caption = format_text(call, call.params.text("caption").value_or(""), "caption_entities");
  if (utf16_length(caption.text) > kMaxCaptionLength) {
    throw bad_request("message caption is too long");
  }
  auto& chat = resolve_target_chat(call, true);

  boost::json::object message = new_message_json(chat, 0, call.now, true, {});
  auto const replied_to = reply_target(call, chat, message);
  if (kind == "photo") {
    boost::json::array sizes;
    if (!reused_id.empty()) {
      auto const& file = files_.at(reused_id);
      boost::json::object size;
      size["file_id"] = reused_id;
      size["file_unique_id"] = file.file_unique_id;
      size["file_size"] = file.file_size;
      size["width"] = file.width;
      size["height"] = file.height;
      sizes.push_back(std::move(size));
    } else {
      auto [width, height] = dimensions.value_or(std::pair<std::int64_t, std::int64_t>{800, 600});
      auto const longest = std::max(width, height);
      for (auto box : kPhotoBoxes) {
        bool const last = longest <= box || box == kPhotoBoxes.back();
        auto scale = last ? std::min(1.0, static_cast<double>(box) / static_cast<double>(longest))
                          : static_cast<double>(box) / static_cast<double>(longest);
        StoredFile file;
        file.kind = "photo";
        file.width = std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(width) * scale));
        file.height = std::max<std::int64_t>(1, static_cast<std::int64_t>(static_cast<double>(height) * scale));
        file.file_size = std::max<std::int64_t>(
            1, static_cast<std::int64_t>(static_cast<double>(upload->data.size()) * scale * scale));
        auto file_id = new_file_id("photo", file.file_unique_id);
        boost::json::object size;
        size["file_id"] = file_id;
        size["file_unique_id"] = file.file_unique_id;
        size["file_size"] = file.file_size;
        size["width"] = file.width;
        size["height"] = file.height;
        sizes.push_back(std::move(size));
        files_.emplace(std::move(file_id), std::move(file));
        if (last) {
          break;
        }
      }
    }
    message["photo"] = std::move(sizes);
  } else {
    std::string file_id = reused_id;
    if (file_id.empty()) {
      StoredFile file;
      file.kind = "document";
      file.file_name = upload->filename;
      file.mime_type = guess_mime_type(upload->filename, upload->content_type);
      file.file_size = static_cast<std::int64_t>(upload->data.size());
      file_id = new_file_id("document", file.file_unique_id);
      files_.emplace(file_id, std::move(file));
    }
    auto const& file = files_.at(file_id);
    boost::json::object document;
    if (!file.file_name.empty()) {
      document["file_name"] = file.file_name;
    }
    if (!file.mime_type.empty()) {
      document["mime_type"] = file.mime_type;
    }
    document["file_id"] = file_id;
    document["file_unique_id"] = file.file_unique_id;
    document["file_size"] = file.file_size;
    message["document"] = std::move(document);
  }
  if (!caption.text.empty()) {
    message["caption"] = caption.text;
    if (!caption.entities.empty()) {
      message["caption_entities"] = entities_to_json(caption.entities);
    }
  }
  attach_reply_markup(call, message, nullptr);
  check_flood(call, chat);

  auto const message_id = allocate_message_id(chat);
  message["message_id"] = message_id;
  auto& stored = store_message(chat, message_id, message, true);
  note_bot_activity(chat, replied_to, call.now);
  call.raw_result = stored.json;
  return nullptr;
}

boost::json::value Engine::edit_message_text(CallContext& call) {
  if (call.params.has("inline_message_id")) {
    throw bad_request("MESSAGE_ID_INVALID");
  }
  auto raw_text = call.params.text("text").value_or("");
  if (raw_text.empty()) {
    throw bad_request("message text is empty");
  }
  auto formatted = format_text(call, raw_text, "entities");
  auto& chat = resolve_target_chat(call, true);
  if (formatted.text.empty()) {
    throw bad_request("message text is empty");
  }
  if (utf16_length(formatted.text) > kMaxTextLength) {
    throw bad_request("message is too long");
  }
  auto* stored = find_message(chat, call.params.integer("message_id").value_or(0));
  if (stored == nullptr) {
    throw bad_request("message to edit not found");
  }
  if (!stored->from_bot) {
    throw bad_request("message can't be edited");
  }
  auto const current = boost::json::parse(stored->json).as_object();
  if (!current.contains("text")) {
    throw bad_request("there is no text in the message to edit");
  }

  boost::json::object replacement;
  replacement["text"] = formatted.text;
  if (!formatted.entities.empty()) {
    replacement["entities"] = entities_to_json(formatted.entities);
  }
  attach_reply_markup(call, replacement, stored);

  auto same = [&](std::string_view key) {
    auto const* before = current.if_contains(key);
    auto const* after = replacement.if_contains(key);
    if (before == nullptr || after == nullptr) {
      return before == after;
    }
    return *before == *after;
  };
  if (same("text") && same("entities") && same("reply_markup")) {
    throw bad_request(
        "message is not modified: specified new message content and reply markup are exactly the same as a "
        "current content and reply markup of the message");
  }

  // Rebuild the message in Telegram's key order: edit_date follows date,
  // the new content replaces the old one.
  boost::json::object edited;
  edited.reserve(current.size() + 2);
  for (auto const& [key, value] : current) {
    if (key == "text" || key == "entities" || key == "reply_markup" || key == "edit_date") {
      continue;
    }
    edited[key] = value;
    if (key == "date") {
      edited["edit_date"] = unix_time(call.now);
    }
  }
  for (auto& [key, value] : replacement) {
    edited[key] = std::move(value);
  }
  auto const message_id = current.at("message_id").to_number<std::int64_t>();
  auto& updated = store_message(chat, message_id, edited, true);
  note_bot_activity(chat, std::nullopt, call.now);
  call.raw_result = updated.json;
  return nullptr;
}

boost::json::value Engine::delete_message(CallContext& call) {
  auto& chat = resolve_target_chat(call, false);
  auto const message_id = call.params.integer("message_id").value_or(0);
  auto* stored = find_message(chat, message_id);
  if (stored == nullptr) {
    throw bad_request("message to delete not found");
  }
  // NOTE: Telegram also refuses to delete messages older than 48 hours;
  // the sandbox does not track message age for deletion.
  if (!stored->from_bot && chat.chat.is_group_like() && !chat.chat.bot_is_admin) {
    throw bad_request("message can't be deleted");
  }
  chat.messages.erase(message_id);
  note_bot_activity(chat, std::nullopt, call.now);
  return true;
}

boost::json::value Engine::answer_callback_query(CallContext& call) {
  auto id = call.params.text("callback_query_id").value_or("");
  auto query = callback_queries_.find(id);
  if (query == callback_queries_.end() || query->second.answered) {
    throw bad_request("query is too old and response timeout expired or query ID is invalid");
  }
  auto text = call.params.text("text").value_or("");
  if (!is_valid_utf8(text)) {
    throw bad_request("strings must be encoded in UTF-8");
  }
  if (utf16_length(text) > kMaxCallbackAnswerLength) {
    throw bad_request("MESSAGE_TOO_LONG");
  }
  query->second.answered = true;
  call.chat_id = query->second.chat_id;
  if (query->second.delivered) {
    stats_.reply_latency.add(call.now - query->second.delivered_at);
  }
  return true;
}

boost::json::value Engine::send_chat_action(CallContext& call) {
  auto action = call.params.text("action").value_or("");
  if (std::find(kChatActions.begin(), kChatActions.end(), action) == kChatActions.end()) {
    throw bad_request("wrong parameter action in request");
  }
  auto& chat = resolve_target_chat(call, true);
  note_bot_activity(chat, std::nullopt, call.now);
  return true;
}

boost::json::value Engine::copy_or_forward(CallContext& call, bool forward) {
  auto& source = resolve_chat_param(call, "from_chat_id");
  auto const message_id = call.params.integer("message_id").value_or(0);
  auto* original = find_message(source, message_id);
  if (original == nullptr) {
    throw bad_request(forward ? "message to forward not found" : "message to copy not found");
  }
  auto& chat = resolve_target_chat(call, true);
  // Parse the original before storing the new message: the target may be
  // the same chat, whose message map can evict the original.
  auto const original_json = boost::json::parse(original->json).as_object();

  std::optional<FormattedText> caption;
  if (!forward && call.params.has("caption")) {
    caption = format_text(call, call.params.text("caption").value_or(""), "caption_entities");
    if (utf16_length(caption->text) > kMaxCaptionLength) {
      throw bad_request("message caption is too long");
    }
  }

  boost::json::object message = new_message_json(chat, 0, call.now, true, {});
  std::optional<std::int64_t> replied_to;
  if (forward) {
    boost::json::object origin;
    auto const date = original_json.if_contains("date") != nullptr ? original_json.at("date") : boost::json::value(0);
    auto const* from = original_json.if_contains("from");
    auto const* sender_chat = original_json.if_contains("sender_chat");
    if (source.chat.type == ChatType::channel && sender_chat != nullptr) {
      origin["type"] = "channel";
      origin["chat"] = *sender_chat;
      origin["message_id"] = message_id;
      origin["date"] = date;
      message["forward_origin"] = std::move(origin);
      message["forward_from_chat"] = *sender_chat;
      message["forward_from_message_id"] = message_id;
    } else if (from != nullptr) {
      origin["type"] = "user";
      origin["sender_user"] = *from;
      origin["date"] = date;
      message["forward_origin"] = std::move(origin);
      message["forward_from"] = *from;
    }
    message["forward_date"] = date;
  } else {
    replied_to = reply_target(call, chat, message);
  }
  bool has_content = false;
  for (auto const& [key, value] : original_json) {
    if (!is_content_field(key)) {
      continue;
    }
    if (caption && (key == "caption" || key == "caption_entities")) {
      continue;
    }
    has_content = true;
    message[key] = value;
  }
  if (!has_content) {
    throw bad_request(forward ? "message can't be forwarded" : "message can't be copied");
  }
  if (caption && !caption->text.empty()) {
    message["caption"] = caption->text;
    if (!caption->entities.empty()) {
      message["caption_entities"] = entities_to_json(caption->entities);
    }
  }
  if (!forward) {
    attach_reply_markup(call, message, nullptr);
  }
  check_flood(call, chat);

  auto const new_id = allocate_message_id(chat);
  message["message_id"] = new_id;
  auto& stored = store_message(chat, new_id, message, true);
  note_bot_activity(chat, replied_to, call.now);
  if (forward) {
    call.raw_result = stored.json;
    return nullptr;
  }
  boost::json::object id;
  id["message_id"] = new_id;
  return id;
}

boost::json::value Engine::get_chat(CallContext& call) {
  auto& state = resolve_target_chat(call, false);
  auto const& chat = state.chat;
  boost::json::object info;
  info["id"] = chat.id;
  if (chat.type == ChatType::private_chat) {
    info["first_name"] = chat.first_name;
    if (!chat.last_name.empty()) {
      info["last_name"] = chat.last_name;
    }
  } else {
    info["title"] = chat.title;
  }
  if (!chat.username.empty()) {
    info["username"] = chat.username;
  }
  info["type"] = chat_type_name(chat.type);
  if (chat.is_forum) {
    info["is_forum"] = true;
  }
  if (chat.type == ChatType::group || chat.type == ChatType::supergroup) {
    boost::json::object permissions;
    for (auto name : {"can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos",
                      "can_send_videos", "can_send_video_notes", "can_send_voice_notes", "can_send_polls",
                      "can_send_other_messages", "can_add_web_page_previews"}) {
      permissions[name] = true;
    }
    for (auto name : {"can_change_info", "can_invite_users", "can_pin_messages", "can_manage_topics"}) {
      permissions[name] = false;
    }
    info["permissions"] = std::move(permissions);
  }
  info["accent_color_id"] = 0;
  info["max_reaction_count"] = 11;
  return info;
}

namespace {

std::string commands_key(Engine::CallContext& call) {
  std::string scope = R"({"type":"default"})";
  if (call.params.has("scope")) {
    try {
      auto value = call.params.json("scope");
      if (value) {
        scope = boost::json::serialize(*value);
      }
    } catch (std::invalid_argument const&) {
      throw bad_request("can't parse BotCommandScope JSON object");
    }
  }
  return scope + "|" + call.params.text("language_code").value_or("");
}

}  // namespace

boost::json::value Engine::set_my_commands(CallContext& call) {
  std::optional<boost::json::value> commands;
  try {
    commands = call.params.json("commands");
  } catch (std::invalid_argument const&) {
    throw bad_request("can't parse commands JSON object");
  }
  if (!commands || !commands->is_array()) {
    throw bad_request("can't parse commands JSON object");
  }
  if (commands->get_array().size() > 100) {
    throw bad_request("too many commands specified");
  }
  boost::json::array stored;
  for (auto const& item : commands->get_array()) {
    if (!item.is_object()) {
      throw bad_request("can't parse BotCommand JSON object");
    }
    auto const& object = item.get_object();
    auto const* command = object.if_contains("command");
    auto const* description = object.if_contains("description");
    if (command == nullptr || !command->is_string() || description == nullptr || !description->is_string()) {
      throw bad_request("can't parse BotCommand JSON object");
    }
    std::string_view name = command->get_string();
    if (name.starts_with('/')) {
      name.remove_prefix(1);
    }
    bool const valid_name = !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
    if (!valid_name) {
      throw bad_request("BOT_COMMAND_INVALID");
    }
    auto description_length = utf16_length(description->get_string());
    if (description_length == 0 || description_length > 256) {
      throw bad_request("BOT_COMMAND_DESCRIPTION_INVALID");
    }
    boost::json::object entry;
    entry["command"] = name;
    entry["description"] = description->get_string();
    stored.push_back(std::move(entry));
  }
  commands_[commands_key(call)] = std::move(stored);
  return true;
}

boost::json::value Engine::get_my_commands(CallContext& call) {
  auto it = commands_.find(commands_key(call));
  return it == commands_.end() ? boost::json::value(boost::json::array()) : it->second;
}

boost::json::value Engine::delete_my_commands(CallContext& call) {
  commands_.erase(commands_key(call));
  return true;
}

}  // namespace sluice::sandbox
