#include <sluice/telegram/keyboards.hpp>

#include <stdexcept>
#include <utility>

namespace sluice::telegram {

InlineKeyboardButton callback_button(std::string text, std::string callback_data) {
  if (callback_data.empty() || callback_data.size() > kMaxCallbackDataBytes) {
    throw std::invalid_argument("callback_data of button '" + text + "' is " +
                                std::to_string(callback_data.size()) +
                                " bytes; Telegram accepts 1 to " +
                                std::to_string(kMaxCallbackDataBytes));
  }
  InlineKeyboardButton button;
  button.text = std::move(text);
  button.callback_data = std::move(callback_data);
  return button;
}

InlineKeyboardButton url_button(std::string text, std::string url) {
  InlineKeyboardButton button;
  button.text = std::move(text);
  button.url = std::move(url);
  return button;
}

InlineKeyboardButton web_app_button(std::string text, std::string url) {
  InlineKeyboardButton button;
  button.text = std::move(text);
  button.web_app = WebAppInfo{.url = std::move(url)};
  return button;
}

InlineKeyboardButton switch_inline_current_chat_button(std::string text, std::string query) {
  InlineKeyboardButton button;
  button.text = std::move(text);
  button.switch_inline_query_current_chat = std::move(query);
  return button;
}

InlineKeyboardButton copy_text_button(std::string text, std::string copied_text) {
  InlineKeyboardButton button;
  button.text = std::move(text);
  button.copy_text = CopyTextButton{.text = std::move(copied_text)};
  return button;
}

InlineKeyboardBuilder& InlineKeyboardBuilder::button(InlineKeyboardButton button) {
  rows_.back().push_back(std::move(button));
  return *this;
}

InlineKeyboardBuilder& InlineKeyboardBuilder::callback(std::string text, std::string callback_data) {
  return button(callback_button(std::move(text), std::move(callback_data)));
}

InlineKeyboardBuilder& InlineKeyboardBuilder::url(std::string text, std::string url) {
  return button(url_button(std::move(text), std::move(url)));
}

InlineKeyboardBuilder& InlineKeyboardBuilder::row() {
  if (!rows_.back().empty()) {
    rows_.emplace_back();
  }
  return *this;
}

InlineKeyboardMarkup InlineKeyboardBuilder::build() const {
  InlineKeyboardMarkup markup;
  markup.inline_keyboard = rows_;
  if (markup.inline_keyboard.back().empty()) {
    markup.inline_keyboard.pop_back();
  }
  return markup;
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::button(KeyboardButton button) {
  rows_.back().push_back(std::move(button));
  return *this;
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::text(std::string text) {
  KeyboardButton button;
  button.text = std::move(text);
  return this->button(std::move(button));
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::request_contact(std::string text) {
  KeyboardButton button;
  button.text = std::move(text);
  button.request_contact = true;
  return this->button(std::move(button));
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::request_location(std::string text) {
  KeyboardButton button;
  button.text = std::move(text);
  button.request_location = true;
  return this->button(std::move(button));
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::row() {
  if (!rows_.back().empty()) {
    rows_.emplace_back();
  }
  return *this;
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::resize(bool on) {
  options_.resize_keyboard = on;
  return *this;
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::one_time(bool on) {
  options_.one_time_keyboard = on;
  return *this;
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::persistent(bool on) {
  options_.is_persistent = on;
  return *this;
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::selective(bool on) {
  options_.selective = on;
  return *this;
}

ReplyKeyboardBuilder& ReplyKeyboardBuilder::placeholder(std::string text) {
  options_.input_field_placeholder = std::move(text);
  return *this;
}

ReplyKeyboardMarkup ReplyKeyboardBuilder::build() const {
  ReplyKeyboardMarkup markup = options_;
  markup.keyboard = rows_;
  if (markup.keyboard.back().empty()) {
    markup.keyboard.pop_back();
  }
  return markup;
}

ReplyKeyboardRemove remove_keyboard(bool selective) {
  ReplyKeyboardRemove markup;
  markup.remove_keyboard = true;
  if (selective) {
    markup.selective = true;
  }
  return markup;
}

ForceReply force_reply(std::string placeholder, bool selective) {
  ForceReply markup;
  markup.force_reply = true;
  if (!placeholder.empty()) {
    markup.input_field_placeholder = std::move(placeholder);
  }
  if (selective) {
    markup.selective = true;
  }
  return markup;
}

}  // namespace sluice::telegram
