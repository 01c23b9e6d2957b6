#include <sluice/telegram/token.hpp>

#include <charconv>
#include <system_error>

namespace sluice::telegram {

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

}  // namespace sluice::telegram
