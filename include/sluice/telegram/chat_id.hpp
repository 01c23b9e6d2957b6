#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <sluice/telegram/json_fwd.hpp>

namespace sluice::telegram {

/// The target of a request's chat_id or from_chat_id: a numeric chat id or
/// the "@username" of a channel, supergroup or bot
/// (https://core.telegram.org/bots/api#sendmessage, "Integer or String").
///
/// Converts implicitly from integers and strings, so requests read
/// `SendMessage{.chat_id = 42, ...}` or `.chat_id = "@example_channel"`.
/// A default-constructed ChatId is the id 0, which Telegram rejects.
class ChatId {
 public:
  ChatId() noexcept = default;

  template <std::integral Integer>
    requires(!std::same_as<Integer, bool> && !std::same_as<Integer, char>)
  ChatId(Integer id) noexcept  // NOLINT(google-explicit-constructor)
      : value_(static_cast<std::int64_t>(id)) {}

  ChatId(std::string username)  // NOLINT(google-explicit-constructor)
      : value_(std::move(username)) {}
  ChatId(std::string_view username)  // NOLINT(google-explicit-constructor)
      : value_(std::string(username)) {}
  ChatId(const char* username)  // NOLINT(google-explicit-constructor)
      : value_(std::string(username)) {}

  [[nodiscard]] bool is_id() const noexcept { return std::holds_alternative<std::int64_t>(value_); }
  [[nodiscard]] bool is_username() const noexcept { return !is_id(); }

  /// The numeric id, or std::nullopt for a username.
  [[nodiscard]] std::optional<std::int64_t> id() const noexcept {
    if (const auto* id = std::get_if<std::int64_t>(&value_)) {
      return *id;
    }
    return std::nullopt;
  }

  /// The "@username", or an empty view for a numeric id.
  [[nodiscard]] std::string_view username() const noexcept {
    if (const auto* name = std::get_if<std::string>(&value_)) {
      return *name;
    }
    return {};
  }

  /// The id in decimal or the username, as it appears in a form field.
  [[nodiscard]] std::string to_string() const {
    if (const auto* id = std::get_if<std::int64_t>(&value_)) {
      return std::to_string(*id);
    }
    return std::get<std::string>(value_);
  }

  bool operator==(const ChatId&) const = default;

 private:
  std::variant<std::int64_t, std::string> value_{std::int64_t{0}};
};

/// Reads a JSON integer or string.
bool read_json(const boost::json::value& json, ChatId& out, detail::ReadContext& context);
/// Writes a JSON integer for an id and a string for a username.
void write_json(boost::json::value& json, const ChatId& in, detail::WriteContext& context);

}  // namespace sluice::telegram
