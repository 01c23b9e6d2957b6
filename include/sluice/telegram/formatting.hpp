#pragma once

// Message text with entities instead of escaped Markdown or HTML.
//
//   FormattedText text;
//   text.plain("Order ").bold("#42").plain(" is ready: ").link("track it", url);
//   SendMessage request{.chat_id = chat, .text = text.text(), .entities = text.entities()};
//
// Entities carry UTF-16 offsets as Telegram expects
// (https://core.telegram.org/bots/api#formatting-options), so user text
// needs no escaping and emoji or other non-BMP characters cannot shift
// the formatting.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <sluice/telegram/generated/types/message_entity.hpp>

namespace sluice::telegram {

/// Builds message text and its entities by appending pieces.
///
/// Empty pieces add no entity, since Telegram rejects entities of length 0.
/// Nested styles come from the overloads that take a FormattedText: the
/// outer entity is listed before the inner ones, as Telegram sends them.
class FormattedText {
 public:
  FormattedText() = default;

  FormattedText& plain(std::string_view text);
  FormattedText& bold(std::string_view text);
  FormattedText& italic(std::string_view text);
  FormattedText& underline(std::string_view text);
  FormattedText& strikethrough(std::string_view text);
  FormattedText& spoiler(std::string_view text);
  FormattedText& code(std::string_view text);
  /// A code block; `language` (for example "cpp") is optional.
  FormattedText& pre(std::string_view text, std::string_view language = {});
  FormattedText& blockquote(std::string_view text);
  FormattedText& link(std::string_view text, std::string_view url);
  /// A mention of a user by id, for users without a username.
  FormattedText& mention(std::string_view text, const User& user);
  /// `placeholder` is the emoji shown where custom emoji are unavailable.
  FormattedText& custom_emoji(std::string_view placeholder, std::string_view custom_emoji_id);

  FormattedText& bold(const FormattedText& inner);
  FormattedText& italic(const FormattedText& inner);
  FormattedText& underline(const FormattedText& inner);
  FormattedText& strikethrough(const FormattedText& inner);
  FormattedText& spoiler(const FormattedText& inner);
  FormattedText& blockquote(const FormattedText& inner);
  FormattedText& link(const FormattedText& inner, std::string_view url);

  /// Appends `other` with its entities shifted behind the current text.
  FormattedText& append(const FormattedText& other);

  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  [[nodiscard]] const std::vector<MessageEntity>& entities() const noexcept { return entities_; }
  /// Length of text() in UTF-16 code units (Telegram's 4096 limit counts these).
  [[nodiscard]] std::int64_t utf16_length() const noexcept { return length_; }

 private:
  FormattedText& styled(MessageEntity entity, std::string_view text);
  FormattedText& wrapped(MessageEntity entity, const FormattedText& inner);

  std::string text_;
  std::vector<MessageEntity> entities_;
  std::int64_t length_ = 0;
};

}  // namespace sluice::telegram
