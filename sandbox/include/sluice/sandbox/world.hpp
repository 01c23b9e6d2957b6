#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::sandbox {

/// The bot the sandbox pretends to be.
struct BotIdentity {
  /// Token accepted in `/bot<token>/` URLs; any other token gets 401. The
  /// digits before ':' are the bot's user id, as in Telegram's tokens.
  std::string token = "123456789:AAHsandboxTokenForLocalTests000000";
  std::string first_name = "Sandbox Bot";
  std::string username = "sluice_sandbox_bot";
  bool can_join_groups = true;
  bool can_read_all_group_messages = false;
  bool supports_inline_queries = false;

  /// Returns the bot's user id: the digits before ':' in the token, or 0
  /// when the token does not start with digits.
  std::int64_t id() const;
};

enum class ChatType { private_chat, group, supergroup, channel };

/// Returns Telegram's name of the type: "private", "group", ...
std::string_view chat_type_name(ChatType type);

/// Parses Telegram's name of a chat type.
std::optional<ChatType> parse_chat_type(std::string_view name);

/// A user the sandbox knows. Every user has a private chat with the bot
/// whose id is the user's id.
struct User {
  std::int64_t id = 0;
  std::string first_name;
  std::string last_name;
  std::string username;
  std::string language_code;
  bool is_premium = false;
  /// The user blocked the bot: sends to the private chat get 403
  /// "Forbidden: bot was blocked by the user".
  bool blocked_bot = false;
  /// The account was deleted: sends get 403 "Forbidden: user is deactivated".
  bool deactivated = false;
};

/// A chat the sandbox knows.
struct Chat {
  std::int64_t id = 0;
  ChatType type = ChatType::private_chat;
  /// Title of a group, supergroup or channel.
  std::string title;
  std::string username;
  /// Names of a private chat (copied from its user).
  std::string first_name;
  std::string last_name;
  bool is_forum = false;
  /// Set on a basic group that was upgraded: sends get 400 "group chat was
  /// upgraded to a supergroup chat" with this id as migrate_to_chat_id.
  std::int64_t migrated_to_chat_id = 0;
  /// The bot is no longer a member: sends get 403.
  bool bot_removed = false;
  /// The bot is an administrator (it may delete other members' messages).
  bool bot_is_admin = false;

  bool is_group_like() const { return type != ChatType::private_chat; }
};

}  // namespace sluice::sandbox
