#pragma once

// Builders for inline and reply keyboards.
//
//   InlineKeyboardMarkup markup = InlineKeyboardBuilder()
//       .callback("Yes", "vote:yes").callback("No", "vote:no")
//       .row()
//       .url("Rules", "https://example.org/rules")
//       .build();
//
// The generated structs work with designated initializers too; the
// builders save the nested vectors and check the limits Telegram enforces
// (https://core.telegram.org/bots/api#inlinekeyboardbutton).

#include <cstddef>
#include <string>
#include <vector>

#include <sluice/telegram/generated/types/force_reply.hpp>
#include <sluice/telegram/generated/types/inline_keyboard_markup.hpp>
#include <sluice/telegram/generated/types/reply_keyboard_markup.hpp>
#include <sluice/telegram/generated/types/reply_keyboard_remove.hpp>

namespace sluice::telegram {

/// Largest callback_data Telegram accepts, in bytes.
inline constexpr std::size_t kMaxCallbackDataBytes = 64;

/// A button that sends `callback_data` back in a CallbackQuery. Throws
/// std::invalid_argument when `callback_data` is empty or longer than
/// kMaxCallbackDataBytes.
[[nodiscard]] InlineKeyboardButton callback_button(std::string text, std::string callback_data);
/// A button that opens `url`.
[[nodiscard]] InlineKeyboardButton url_button(std::string text, std::string url);
/// A button that opens the Web App at `url`.
[[nodiscard]] InlineKeyboardButton web_app_button(std::string text, std::string url);
/// A button that starts an inline query `query` in the current chat.
[[nodiscard]] InlineKeyboardButton switch_inline_current_chat_button(std::string text, std::string query);
/// A button that copies `copied_text` to the clipboard.
[[nodiscard]] InlineKeyboardButton copy_text_button(std::string text, std::string copied_text);

/// Builds an InlineKeyboardMarkup row by row.
class InlineKeyboardBuilder {
 public:
  /// Appends `button` to the current row.
  InlineKeyboardBuilder& button(InlineKeyboardButton button);
  InlineKeyboardBuilder& callback(std::string text, std::string callback_data);
  InlineKeyboardBuilder& url(std::string text, std::string url);
  /// Starts a new row; does nothing when the current row is empty.
  InlineKeyboardBuilder& row();

  /// The markup, without a trailing empty row.
  [[nodiscard]] InlineKeyboardMarkup build() const;

 private:
  std::vector<std::vector<InlineKeyboardButton>> rows_{{}};
};

/// Builds a ReplyKeyboardMarkup (a custom keyboard under the input field).
class ReplyKeyboardBuilder {
 public:
  /// Appends `button` to the current row.
  ReplyKeyboardBuilder& button(KeyboardButton button);
  /// A button that sends its text as a message.
  ReplyKeyboardBuilder& text(std::string text);
  /// A button that shares the user's phone number.
  ReplyKeyboardBuilder& request_contact(std::string text);
  /// A button that shares the user's location.
  ReplyKeyboardBuilder& request_location(std::string text);
  /// Starts a new row; does nothing when the current row is empty.
  ReplyKeyboardBuilder& row();

  /// Fit the keyboard's height to its buttons (Telegram's default is off).
  ReplyKeyboardBuilder& resize(bool on = true);
  /// Hide the keyboard after one press.
  ReplyKeyboardBuilder& one_time(bool on = true);
  /// Keep the keyboard shown when the system keyboard is hidden.
  ReplyKeyboardBuilder& persistent(bool on = true);
  /// Show only to users mentioned in the message or replied to.
  ReplyKeyboardBuilder& selective(bool on = true);
  /// Placeholder in the input field, 1-64 characters.
  ReplyKeyboardBuilder& placeholder(std::string text);

  [[nodiscard]] ReplyKeyboardMarkup build() const;

 private:
  std::vector<std::vector<KeyboardButton>> rows_{{}};
  ReplyKeyboardMarkup options_;
};

/// Markup that removes the custom keyboard.
[[nodiscard]] ReplyKeyboardRemove remove_keyboard(bool selective = false);

/// Markup that opens a reply to the bot's message, with an optional
/// placeholder in the input field.
[[nodiscard]] ForceReply force_reply(std::string placeholder = {}, bool selective = false);

}  // namespace sluice::telegram
