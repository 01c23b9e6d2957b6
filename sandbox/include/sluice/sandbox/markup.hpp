#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

namespace sluice::sandbox {

/// A formatting entity of a message text, with offset and length in UTF-16
/// code units as the Bot API reports them
/// (https://core.telegram.org/bots/api#messageentity).
struct Entity {
  std::string type;
  std::int64_t offset = 0;
  std::int64_t length = 0;
  /// URL of a "text_link" entity.
  std::string url;
  /// Programming language of a "pre" entity; empty when none was given.
  std::string language;
  /// Identifier of a "custom_emoji" entity.
  std::string custom_emoji_id;
  /// User of a "text_mention" entity (from a tg://user?id= link).
  std::int64_t user_id = 0;

  bool operator==(Entity const&) const = default;
};

/// A message text with its entities, after markup parsing.
struct FormattedText {
  std::string text;
  std::vector<Entity> entities;
};

/// A markup error. `message` is what Telegram prints after
/// "Bad Request: can't parse entities: ".
struct MarkupError {
  std::string message;
};

using MarkupResult = std::variant<FormattedText, MarkupError>;

/// Returns the number of UTF-16 code units of valid UTF-8 `text`.
std::size_t utf16_length(std::string_view text);

/// Returns true if `text` is well-formed UTF-8 (no overlong forms, no
/// surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view text);

/// Parses `parse_mode=HTML` markup: the tags b, strong, i, em, u, ins, s,
/// strike, del, a, code, pre, blockquote, tg-spoiler, span class="tg-spoiler"
/// and tg-emoji; the named character references &lt; &gt; &amp; &quot; and
/// numeric ones. Error messages follow Telegram's wording, with byte offsets
/// into `markup`.
MarkupResult parse_html(std::string_view markup);

/// Parses `parse_mode=MarkdownV2` markup, rejecting unescaped reserved
/// characters as Telegram does.
MarkupResult parse_markdown_v2(std::string_view markup);

/// Parses the legacy `parse_mode=Markdown` markup (bold, italic, code, pre,
/// inline links).
MarkupResult parse_markdown(std::string_view markup);

/// Adds the entities Telegram detects by itself in plain text: bot_command,
/// mention, hashtag, cashtag, url and email. Text inside code and pre
/// entities is skipped. Keeps `text.entities` sorted by offset.
///
/// NOTE: only URLs with an explicit http:// or https:// scheme are detected;
/// Telegram also links bare domains such as example.com.
void detect_entities(FormattedText& text);

/// Removes leading and trailing whitespace as Telegram does before sending,
/// clipping and shifting the entities. Offsets are in UTF-16 code units.
void trim_formatted_text(FormattedText& text);

/// Serialises entities in Telegram's key order (offset, length, type, then
/// the type's extra field), allocating from `storage`.
boost::json::array entities_to_json(std::vector<Entity> const& entities, boost::json::storage_ptr storage = {});

/// Reads an explicit `entities` parameter (a JSON array, or a string holding
/// one). Returns nullopt when it is not an array of entity objects.
/// Entities that end past `text_utf16_length` are clipped; empty ones are
/// dropped.
std::optional<std::vector<Entity>> entities_from_json(boost::json::value const& value,
                                                      std::size_t text_utf16_length);

}  // namespace sluice::sandbox
