#pragma once

// Declarations shared by the source files of sluice::sandbox::Engine.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <sluice/sandbox/engine.hpp>
#include <sluice/sandbox/markup.hpp>

namespace sluice::sandbox {

/// A Bot API error reply, thrown inside the engine and turned into
/// {"ok":false,...} by Engine::handle.
struct ApiError : std::runtime_error {
  ApiError(int error_code, std::string const& description) : std::runtime_error(description), code(error_code) {}

  int code;
  std::optional<std::int64_t> retry_after;
  std::optional<std::int64_t> migrate_to_chat_id;
};

inline ApiError bad_request(std::string_view what) {
  return ApiError(400, "Bad Request: " + std::string(what));
}

struct Engine::CallContext {
  CallContext(ApiRequest& call_request, Instant call_now)
      : request(call_request), params(call_request.params), now(call_now) {}

  ApiRequest& request;
  Params params;
  Instant now;
  /// Chat the call addressed, for the call record.
  std::int64_t chat_id = 0;
  /// "description" of a successful reply ("Webhook was set").
  std::string description;
  /// A serialized result; when set, it replaces the value the method
  /// returns (message methods use it to skip building the JSON again).
  std::string raw_result;
};

/// Lower-cases ASCII letters.
std::string ascii_lower(std::string_view text);

/// Returns the Bot API spelling of a method ("sendmessage" ->
/// "sendMessage"), or nullopt for names the Bot API does not have.
std::optional<std::string_view> canonical_method(std::string_view lower_name);

/// Returns true if `kind` is a field of Update in the Bot API.
bool is_known_update_kind(std::string_view kind);

/// Serialises {"ok":true,"result":...[,"description":...]}.
std::string ok_body(boost::json::value result, std::string_view description);

/// Serialises Telegram's error shape for `error`.
ApiReply error_reply(ApiError const& error);

/// Parses a message text or caption with the call's parse mode or entities
/// and applies Telegram's trimming and entity detection. Throws ApiError
/// for invalid UTF-8, an unknown parse mode or a markup error.
FormattedText format_text(Engine::CallContext& call, std::string_view text, std::string_view entities_param);

/// Reads image dimensions from PNG, JPEG, GIF or WebP data.
std::optional<std::pair<std::int64_t, std::int64_t>> image_dimensions(std::string_view data);

}  // namespace sluice::sandbox
