#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::dispatch {

/// A bot command at the start of a message text, such as
/// "/start@example_bot ref42" (https://core.telegram.org/bots/features#commands).
struct Command {
  /// The command without "/" and without the "@bot" suffix: "start".
  std::string name{};
  /// The "@bot" suffix without "@", empty when the text has none.
  std::string mention{};
  /// The rest of the text after the command, without surrounding
  /// whitespace: "ref42".
  std::string args{};
};

/// Parses the command at the start of `text`. Returns std::nullopt when the
/// text does not start with "/" followed by a name, or when the command is
/// addressed to another bot: its "@" suffix differs from `bot_username`
/// (compared without case, as Telegram usernames are). An empty
/// `bot_username` accepts every suffix.
std::optional<Command> parse_command(std::string_view text, std::string_view bot_username);

}  // namespace sluice::dispatch
