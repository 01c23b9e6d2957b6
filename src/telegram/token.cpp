#include <sluice/telegram/token.hpp>

#include <charconv>
#include <system_error>

#include <fmt/format.h>

namespace sluice::telegram {
namespace {

bool is_token_character(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// Names a character for an error message about a token, which must not
// quote the token itself.
std::string describe_character(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte == ' ') {
    return "a space";
  }
  if (byte < ' ' || byte == 0x7f) {
    return "a control character";
  }
  if (byte > '~') {
    return "a non-ASCII byte";
  }
  return fmt::format("'{}'", c);
}

}  // namespace

std::optional<std::int64_t> bot_id_of(std::string_view token) {
  const std::size_t colon = token.find(':');
  if (colon == std::string_view::npos || colon == 0 || token[0] < '0' || token[0] > '9') {
    return std::nullopt;
  }
  std::int64_t id = 0;
  const auto [end, error] = std::from_chars(token.data(), token.data() + colon, id);
  if (error != std::errc() || end != token.data() + colon || id <= 0) {
    return std::nullopt;
  }
  return id;
}

std::optional<std::string> check_token(std::string_view token) {
  if (!bot_id_of(token)) {
    return std::string("a Telegram bot token starts with the bot id and ':' (123456789:AA...)");
  }
  for (std::size_t i = token.find(':') + 1; i < token.size(); ++i) {
    if (is_token_character(token[i])) {
      continue;
    }
    return fmt::format("it contains {} at position {}; after the ':' a token has only letters, digits, '_' and '-'",
                       describe_character(token[i]), i + 1);
  }
  return std::nullopt;
}

}  // namespace sluice::telegram
