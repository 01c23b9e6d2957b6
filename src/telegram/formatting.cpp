#include <sluice/telegram/formatting.hpp>

#include <utility>

#include <sluice/telegram/utf16.hpp>

namespace sluice::telegram {
namespace {

MessageEntity entity_of_type(std::string_view type) {
  MessageEntity entity;
  entity.type = std::string(type);
  return entity;
}

}  // namespace

FormattedText& FormattedText::plain(std::string_view text) {
  text_ += text;
  length_ += static_cast<std::int64_t>(sluice::telegram::utf16_length(text));
  return *this;
}

FormattedText& FormattedText::styled(MessageEntity entity, std::string_view text) {
  const auto length = static_cast<std::int64_t>(sluice::telegram::utf16_length(text));
  if (length > 0) {
    entity.offset = length_;
    entity.length = length;
    entities_.push_back(std::move(entity));
  }
  text_ += text;
  length_ += length;
  return *this;
}

FormattedText& FormattedText::wrapped(MessageEntity entity, const FormattedText& inner) {
  if (inner.length_ > 0) {
    entity.offset = length_;
    entity.length = inner.length_;
    entities_.push_back(std::move(entity));
  }
  return append(inner);
}

FormattedText& FormattedText::append(const FormattedText& other) {
  for (const MessageEntity& inner : other.entities_) {
    MessageEntity shifted = inner;
    shifted.offset += length_;
    entities_.push_back(std::move(shifted));
  }
  text_ += other.text_;
  length_ += other.length_;
  return *this;
}

FormattedText& FormattedText::bold(std::string_view text) {
  return styled(entity_of_type("bold"), text);
}

FormattedText& FormattedText::italic(std::string_view text) {
  return styled(entity_of_type("italic"), text);
}

FormattedText& FormattedText::underline(std::string_view text) {
  return styled(entity_of_type("underline"), text);
}

FormattedText& FormattedText::strikethrough(std::string_view text) {
  return styled(entity_of_type("strikethrough"), text);
}

FormattedText& FormattedText::spoiler(std::string_view text) {
  return styled(entity_of_type("spoiler"), text);
}

FormattedText& FormattedText::code(std::string_view text) {
  return styled(entity_of_type("code"), text);
}

FormattedText& FormattedText::pre(std::string_view text, std::string_view language) {
  MessageEntity entity = entity_of_type("pre");
  if (!language.empty()) {
    entity.language = std::string(language);
  }
  return styled(std::move(entity), text);
}

FormattedText& FormattedText::blockquote(std::string_view text) {
  return styled(entity_of_type("blockquote"), text);
}

FormattedText& FormattedText::link(std::string_view text, std::string_view url) {
  MessageEntity entity = entity_of_type("text_link");
  entity.url = std::string(url);
  return styled(std::move(entity), text);
}

FormattedText& FormattedText::mention(std::string_view text, const User& user) {
  MessageEntity entity = entity_of_type("text_mention");
  entity.user = user;
  return styled(std::move(entity), text);
}

FormattedText& FormattedText::custom_emoji(std::string_view placeholder,
                                           std::string_view custom_emoji_id) {
  MessageEntity entity = entity_of_type("custom_emoji");
  entity.custom_emoji_id = std::string(custom_emoji_id);
  return styled(std::move(entity), placeholder);
}

FormattedText& FormattedText::bold(const FormattedText& inner) {
  return wrapped(entity_of_type("bold"), inner);
}

FormattedText& FormattedText::italic(const FormattedText& inner) {
  return wrapped(entity_of_type("italic"), inner);
}

FormattedText& FormattedText::underline(const FormattedText& inner) {
  return wrapped(entity_of_type("underline"), inner);
}

FormattedText& FormattedText::strikethrough(const FormattedText& inner) {
  return wrapped(entity_of_type("strikethrough"), inner);
}

FormattedText& FormattedText::spoiler(const FormattedText& inner) {
  return wrapped(entity_of_type("spoiler"), inner);
}

FormattedText& FormattedText::blockquote(const FormattedText& inner) {
  return wrapped(entity_of_type("blockquote"), inner);
}

FormattedText& FormattedText::link(const FormattedText& inner, std::string_view url) {
  MessageEntity entity = entity_of_type("text_link");
  entity.url = std::string(url);
  return wrapped(std::move(entity), inner);
}

}  // namespace sluice::telegram
