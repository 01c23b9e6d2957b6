#pragma once

// The envelope of every Bot API reply
// (https://core.telegram.org/bots/api#making-requests):
// {"ok": true, "result": ...} or
// {"ok": false, "error_code": 400, "description": "...", "parameters": {...}}.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include <sluice/telegram/generated/types/response_parameters.hpp>
#include <sluice/telegram/json.hpp>

namespace sluice::telegram {

/// A parsed reply whose result is still JSON.
struct ResponseEnvelope {
  bool ok = false;
  /// HTTP-like error code of a failed call; a few real replies omit it.
  std::optional<std::int64_t> error_code{};
  std::optional<std::string> description{};
  /// retry_after and migrate_to_chat_id of a failed call.
  std::optional<ResponseParameters> parameters{};
  /// The result of a successful call; null when absent.
  boost::json::value result{};
};

/// Parses a reply body. Throws ParseError (path "Response...") when the
/// body is not a JSON object, `ok` is missing or not a boolean, or a known
/// member has the wrong type. Unknown members are ignored.
[[nodiscard]] ResponseEnvelope parse_response_envelope(std::string_view body);

/// Converts the result of a successful reply to the request's result type,
/// for example `parse_result<GetMe>(envelope)` returns a User. Throws
/// ParseError with a path such as "getMe.result.id"; throws ParseError when
/// `envelope.ok` is false (check it first and raise the Bot API error).
template <class Request>
[[nodiscard]] typename Request::result_type parse_result(const ResponseEnvelope& envelope) {
  if (!envelope.ok) {
    throw ParseError(std::string(Request::method_name) + ".result",
                     "reply has ok=false; check ResponseEnvelope::ok first");
  }
  std::string root(Request::method_name);
  root += ".result";
  return from_json<typename Request::result_type>(envelope.result, root);
}

}  // namespace sluice::telegram
