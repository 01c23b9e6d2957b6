#pragma once

// Checks of the Bot API reply envelope
// (https://core.telegram.org/bots/api#making-requests):
// `{"ok": true, "result": ...}` or
// `{"ok": false, "error_code": N, "description": "...", "parameters": {...}}`.
// Pure functions with no I/O, shared by BotApi and by tests.

#include <string_view>

#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include <sluice/telegram/errors.hpp>

namespace sluice::telegram {

/// Parses a reply body into JSON, allocating from `storage`.
///
/// Throws NetworkError (with http_status, maybe_delivered for 5xx) when the
/// body is not JSON and the status is not 200, which is how a proxy or load
/// balancer in front of the Bot API answers; ApiParseError when a 200 reply
/// is not JSON.
boost::json::value parse_reply(std::string_view method, int http_status, std::string_view body,
                               boost::json::storage_ptr storage = {});

/// Returns the `result` member of a parsed reply.
///
/// Throws TelegramError for `"ok": false`, ApiParseError when `ok` is
/// missing or not a boolean, or when `"ok": true` comes without `result`.
const boost::json::value& reply_result(std::string_view method, const boost::json::value& reply);

/// Builds the TelegramError that an `"ok": false` reply describes. Fields of
/// the wrong type are treated as absent.
TelegramError telegram_error_from_reply(std::string_view method,
                                        const boost::json::object& reply);

}  // namespace sluice::telegram
