#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::telegram {

/// Returns the bot id of `token`: the positive number before ':' in every
/// token Telegram issues ("123456789:AAH..."). Returns std::nullopt for
/// another form, a sign, 0 or a number beyond int64_t.
///
/// Stores that several bots share key their rows by this id, never by the
/// whole token.
std::optional<std::int64_t> bot_id_of(std::string_view token);

/// Returns why `token` cannot be a bot token, or nothing when it can. A
/// token is the bot id, ':' and then only letters, digits, '_' and '-', as
/// every token @BotFather issues, so it fits in a URL path unescaped. The
/// reason never quotes the token.
std::optional<std::string> check_token(std::string_view token);

}  // namespace sluice::telegram
