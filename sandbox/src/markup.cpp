#include <sluice/sandbox/markup.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iterator>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include "stable_sort.hpp"

namespace sluice::sandbox {
namespace {

// An entity under construction, with offsets in bytes of the output text.
struct RawEntity {
  std::string type;
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string url;
  std::string language;
  std::string custom_emoji_id;
  std::int64_t user_id = 0;
};

bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_html_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// Returns true if `text` starts with the lower-case ASCII `prefix`, ignoring
// the case of `text`.
bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != prefix[i]) {
      return false;
    }
  }
  return true;
}

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

std::string offset_text(std::size_t offset) {
  return " at byte offset " + std::to_string(offset);
}

// Makes a link target absolute the way Telegram shows it ("example.org" ->
// "http://example.org/"). Returns nullopt for targets Telegram drops: no
// host with a dot, or a scheme other than http, https, tg and ton.
std::optional<std::string> normalize_url(std::string_view url) {
  while (!url.empty() && is_html_space(url.front())) {
    url.remove_prefix(1);
  }
  while (!url.empty() && is_html_space(url.back())) {
    url.remove_suffix(1);
  }
  if (url.empty()) {
    return std::nullopt;
  }
  std::string result;
  std::string_view rest;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    result = "http://";
    rest = url;
  } else {
    auto scheme = to_lower(url.substr(0, scheme_end));
    if (scheme != "http" && scheme != "https" && scheme != "tg" && scheme != "ton") {
      return std::nullopt;
    }
    result = scheme + "://";
    rest = url.substr(scheme_end + 3);
    if (scheme == "tg" || scheme == "ton") {
      return rest.empty() ? std::nullopt : std::optional<std::string>(result + std::string(rest));
    }
  }
  auto host_end = rest.find_first_of("/?#");
  auto host = rest.substr(0, host_end);
  if (host.empty() || host.find('.') == std::string_view::npos || host.front() == '.' ||
      host.back() == '.' || host.find(' ') != std::string_view::npos) {
    return std::nullopt;
  }
  result += to_lower(host);
  if (host_end == std::string_view::npos) {
    result += '/';
  } else {
    if (rest[host_end] != '/') {
      result += '/';
    }
    result += rest.substr(host_end);
  }
  return result;
}

// Turns a link target into a text_link or text_mention entity; returns false
// when Telegram would drop the link.
bool make_link_entity(std::string_view target, RawEntity& entity) {
  if (iequals_prefix(target, "tg://user?id=")) {
    auto digits = target.substr(std::strlen("tg://user?id="));
    std::int64_t id = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc{} || ptr != digits.data() + digits.size() || id <= 0) {
      return false;
    }
    entity.type = "text_mention";
    entity.user_id = id;
    return true;
  }
  auto url = normalize_url(target);
  if (!url) {
    return false;
  }
  entity.type = "text_link";
  entity.url = std::move(*url);
  return true;
}

// Converts byte offsets into UTF-16 offsets, drops empty entities and sorts
// by offset (longer first at equal offsets, so that outer entities precede
// the ones nested in them).
std::vector<Entity> convert_entities(std::string_view text, std::vector<RawEntity> raw) {
  std::vector<Entity> result;
  stable_sort_items(raw, [](RawEntity const& a, RawEntity const& b) {
    if (a.begin != b.begin) {
      return a.begin < b.begin;
    }
    return a.end > b.end;
  });
  for (auto& entity : raw) {
    if (entity.end <= entity.begin) {
      continue;
    }
    auto begin16 = utf16_length(text.substr(0, entity.begin));
    auto length16 = utf16_length(text.substr(entity.begin, entity.end - entity.begin));
    result.push_back(Entity{
        .type = std::move(entity.type),
        .offset = static_cast<std::int64_t>(begin16),
        .length = static_cast<std::int64_t>(length16),
        .url = std::move(entity.url),
        .language = std::move(entity.language),
        .custom_emoji_id = std::move(entity.custom_emoji_id),
        .user_id = entity.user_id,
    });
  }
  return result;
}

FormattedText finish(std::string text, std::vector<RawEntity> raw) {
  FormattedText result;
  result.entities = convert_entities(text, std::move(raw));
  result.text = std::move(text);
  return result;
}

// ---------------------------------------------------------------- HTML ----

constexpr std::string_view kSurrogateError =
    "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched "
    "surrogate code units";

bool is_tag_name_char(char c) {
  return is_ascii_alnum(c) || c == '-' || c == '_';
}

// Decodes one character reference starting at `in[i] == '&'`. Appends the
// result (or a literal '&') to `out` and returns the index after it.
std::optional<std::size_t> decode_reference(std::string_view in, std::size_t i, std::string& out,
                                            bool& surrogate) {
  std::size_t j = i + 1;
  if (j < in.size() && in[j] == '#') {
    ++j;
    int base = 10;
    if (j < in.size() && (in[j] == 'x' || in[j] == 'X')) {
      base = 16;
      ++j;
    }
    std::size_t digits_begin = j;
    std::uint64_t code = 0;
    while (j < in.size() && j - digits_begin < 10) {
      char c = in[j];
      int digit = -1;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (base == 16 && c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (base == 16 && c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      }
      if (digit < 0) {
        break;
      }
      code = code * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(digit);
      ++j;
    }
    if (j == digits_begin || code == 0 || code > 0x10FFFF) {
      out += '&';
      return i + 1;
    }
    if (code >= 0xD800 && code <= 0xDFFF) {
      surrogate = true;
      return std::nullopt;
    }
    if (j < in.size() && in[j] == ';') {
      ++j;
    }
    append_utf8(out, static_cast<std::uint32_t>(code));
    return j;
  }
  std::size_t name_begin = j;
  while (j < in.size() && is_ascii_alnum(in[j])) {
    ++j;
  }
  auto name = in.substr(name_begin, j - name_begin);
  char decoded = 0;
  if (name == "lt") {
    decoded = '<';
  } else if (name == "gt") {
    decoded = '>';
  } else if (name == "amp") {
    decoded = '&';
  } else if (name == "quot") {
    decoded = '"';
  }
  if (decoded == 0) {
    out += '&';
    return i + 1;
  }
  if (j < in.size() && in[j] == ';') {
    ++j;
  }
  out += decoded;
  return j;
}

std::optional<std::string> decode_attribute(std::string_view value, bool& surrogate) {
  std::string out;
  std::size_t i = 0;
  while (i < value.size()) {
    if (value[i] != '&') {
      out += value[i++];
      continue;
    }
    auto next = decode_reference(value, i, out, surrogate);
    if (!next) {
      return std::nullopt;
    }
    i = *next;
  }
  return out;
}

struct HtmlOpenTag {
  std::string name;
  std::size_t out_begin = 0;
  std::size_t in_offset = 0;
  std::string href;
  bool has_href = false;
  std::string language;
  std::string emoji_id;
  bool expandable = false;
};

std::string entity_type_for_tag(std::string const& tag, bool expandable) {
  if (tag == "b" || tag == "strong") {
    return "bold";
  }
  if (tag == "i" || tag == "em") {
    return "italic";
  }
  if (tag == "u" || tag == "ins") {
    return "underline";
  }
  if (tag == "s" || tag == "strike" || tag == "del") {
    return "strikethrough";
  }
  if (tag == "tg-spoiler" || tag == "span") {
    return "spoiler";
  }
  if (tag == "code") {
    return "code";
  }
  if (tag == "pre") {
    return "pre";
  }
  if (tag == "blockquote") {
    return expandable ? "expandable_blockquote" : "blockquote";
  }
  if (tag == "tg-emoji") {
    return "custom_emoji";
  }
  return {};
}

bool is_supported_tag(std::string const& tag) {
  return tag == "a" || !entity_type_for_tag(tag, false).empty();
}

// Closes `open`, adding its entity. A code element with a language that
// exactly covers its pre parent (or child) becomes one pre entity with that
// language, as Telegram merges them.
void close_html_tag(HtmlOpenTag const& open, std::string const& out, std::vector<RawEntity>& entities) {
  RawEntity entity;
  entity.begin = open.out_begin;
  entity.end = out.size();
  if (open.name == "a") {
    auto target = open.has_href ? std::string_view(open.href)
                                : std::string_view(out).substr(open.out_begin);
    if (!make_link_entity(target, entity)) {
      return;
    }
    entities.push_back(std::move(entity));
    return;
  }
  entity.type = entity_type_for_tag(open.name, open.expandable);
  if (open.name == "tg-emoji") {
    entity.custom_emoji_id = open.emoji_id;
  }
  if (open.name == "code" && !open.language.empty() && !entities.empty()) {
    auto& inner = entities.back();
    if (inner.type == "pre" && inner.begin == entity.begin && inner.end == entity.end) {
      inner.language = open.language;
      return;
    }
  }
  if (open.name == "pre" && !entities.empty()) {
    auto& inner = entities.back();
    if (inner.type == "code" && !inner.language.empty() && inner.begin == entity.begin &&
        inner.end == entity.end) {
      inner.type = "pre";
      return;
    }
  }
  if (open.name == "code") {
    entity.language = open.language;
  }
  entities.push_back(std::move(entity));
}

}  // namespace

// ---------------------------------------------------------------- UTF ----

std::size_t utf16_length(std::string_view text) {
  std::size_t length = 0;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if ((byte & 0xC0) != 0x80) {
      ++length;
    }
    if (byte >= 0xF0) {
      ++length;
    }
  }
  return length;
}

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if (byte >= 0xC2 && byte <= 0xDF) {
      extra = 1;
      code = byte & 0x1F;
    } else if (byte >= 0xE0 && byte <= 0xEF) {
      extra = 2;
      code = byte & 0x0F;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      extra = 3;
      code = byte & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) {
      return false;
    }
    for (std::size_t k = 1; k <= extra; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) {
        return false;
      }
      code = (code << 6) | (next & 0x3F);
    }
    if ((extra == 2 && code < 0x800) || (extra == 3 && (code < 0x10000 || code > 0x10FFFF)) ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

MarkupResult parse_html(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::vector<HtmlOpenTag> stack;
  std::vector<RawEntity> entities;
  bool surrogate = false;
  std::size_t i = 0;
  std::size_t const n = in.size();

  while (i < n) {
    char c = in[i];
    if (c == '&') {
      auto next = decode_reference(in, i, out, surrogate);
      if (!next) {
        return MarkupError{std::string(kSurrogateError)};
      }
      i = *next;
      continue;
    }
    if (c != '<') {
      out += c;
      ++i;
      continue;
    }

    std::size_t const tag_offset = i;
    ++i;
    if (i < n && in[i] == '/') {
      ++i;
      if (stack.empty()) {
        return MarkupError{"Unexpected end tag" + offset_text(tag_offset)};
      }
      std::size_t name_begin = i;
      while (i < n && is_tag_name_char(in[i])) {
        ++i;
      }
      auto name = to_lower(in.substr(name_begin, i - name_begin));
      while (i < n && is_html_space(in[i])) {
        ++i;
      }
      if (i == n || in[i] != '>') {
        return MarkupError{"Unclosed end tag" + offset_text(tag_offset)};
      }
      ++i;
      if (!name.empty() && name != stack.back().name) {
        return MarkupError{"Unmatched end tag" + offset_text(tag_offset) + ", expected \"</" +
                           stack.back().name + ">\", found \"</" + name + ">\""};
      }
      close_html_tag(stack.back(), out, entities);
      stack.pop_back();
      continue;
    }

    std::size_t name_begin = i;
    while (i < n && is_tag_name_char(in[i])) {
      ++i;
    }
    if (i == n) {
      return MarkupError{"Unclosed start tag" + offset_text(tag_offset)};
    }
    HtmlOpenTag open;
    open.name = to_lower(in.substr(name_begin, i - name_begin));
    open.in_offset = tag_offset;
    if (!is_supported_tag(open.name)) {
      return MarkupError{"Unsupported start tag \"" + open.name + "\"" + offset_text(tag_offset)};
    }
    std::string span_class;
    bool has_emoji_id = false;
    auto unclosed_named = [&] {
      return MarkupError{"Unclosed start tag \"" + open.name + "\"" + offset_text(tag_offset)};
    };
    while (true) {
      while (i < n && is_html_space(in[i])) {
        ++i;
      }
      if (i == n) {
        return unclosed_named();
      }
      if (in[i] == '>') {
        ++i;
        break;
      }
      std::size_t attribute_begin = i;
      while (i < n && !is_html_space(in[i]) && in[i] != '=' && in[i] != '>') {
        ++i;
      }
      if (i == attribute_begin) {
        return MarkupError{"Empty attribute name in the tag \"" + open.name + "\"" +
                           offset_text(tag_offset)};
      }
      auto attribute = to_lower(in.substr(attribute_begin, i - attribute_begin));
      while (i < n && is_html_space(in[i])) {
        ++i;
      }
      if (i == n) {
        return unclosed_named();
      }
      std::string value;
      if (in[i] == '=') {
        ++i;
        while (i < n && is_html_space(in[i])) {
          ++i;
        }
        if (i == n) {
          return unclosed_named();
        }
        if (in[i] == '"' || in[i] == '\'') {
          char quote = in[i];
          auto close = in.find(quote, i + 1);
          if (close == std::string_view::npos) {
            return MarkupError{"Unclosed start tag" + offset_text(tag_offset)};
          }
          auto decoded = decode_attribute(in.substr(i + 1, close - i - 1), surrogate);
          if (!decoded) {
            return MarkupError{std::string(kSurrogateError)};
          }
          value = std::move(*decoded);
          i = close + 1;
        } else {
          std::size_t value_begin = i;
          while (i < n && (is_ascii_alnum(in[i]) || in[i] == '.' || in[i] == '-')) {
            ++i;
          }
          if (i == n) {
            return unclosed_named();
          }
          if (!is_html_space(in[i]) && in[i] != '>') {
            return MarkupError{"Unexpected end of name token" + offset_text(value_begin)};
          }
          value = std::string(in.substr(value_begin, i - value_begin));
        }
      }
      if (open.name == "a" && attribute == "href") {
        open.href = value;
        open.has_href = true;
      } else if (open.name == "code" && attribute == "class" && value.starts_with("language-")) {
        open.language = value.substr(std::strlen("language-"));
      } else if (open.name == "span" && attribute == "class") {
        span_class = value;
      } else if (open.name == "tg-emoji" && attribute == "emoji-id") {
        open.emoji_id = value;
        has_emoji_id = true;
      } else if (open.name == "blockquote" && attribute == "expandable") {
        open.expandable = true;
      }
    }
    if (open.name == "span" && span_class != "tg-spoiler") {
      return MarkupError{"Tag \"span\" must have class \"tg-spoiler\"" + offset_text(tag_offset)};
    }
    if (open.name == "tg-emoji" && !has_emoji_id) {
      return MarkupError{"Tag \"tg-emoji\" must have attribute \"emoji-id\"" + offset_text(tag_offset)};
    }
    open.out_begin = out.size();
    stack.push_back(std::move(open));
  }

  if (!stack.empty()) {
    return MarkupError{"Can't find end tag corresponding to start tag \"" + stack.back().name + "\""};
  }
  return finish(std::move(out), std::move(entities));
}

// ---------------------------------------------------------- MarkdownV2 ----

namespace {

enum class MdKind { bold, italic, underline, strikethrough, spoiler, code, pre, text_link, custom_emoji };

struct MdOpen {
  MdKind kind;
  std::size_t out_begin = 0;
  std::size_t in_offset = 0;
  std::string language;
};

char const* md_kind_name(MdOpen const& open) {
  switch (open.kind) {
    case MdKind::bold:
      return "Bold";
    case MdKind::italic:
      return "Italic";
    case MdKind::underline:
      return "Underline";
    case MdKind::strikethrough:
      return "Strikethrough";
    case MdKind::spoiler:
      return "Spoiler";
    case MdKind::code:
      return "Code";
    case MdKind::pre:
      return open.language.empty() ? "Pre" : "PreCode";
    case MdKind::text_link:
      return "TextUrl";
    case MdKind::custom_emoji:
      return "CustomEmoji";
  }
  return "Unknown";
}

char const* md_entity_type(MdKind kind) {
  switch (kind) {
    case MdKind::bold:
      return "bold";
    case MdKind::italic:
      return "italic";
    case MdKind::underline:
      return "underline";
    case MdKind::strikethrough:
      return "strikethrough";
    case MdKind::spoiler:
      return "spoiler";
    case MdKind::code:
      return "code";
    case MdKind::pre:
      return "pre";
    case MdKind::text_link:
      return "text_link";
    case MdKind::custom_emoji:
      return "custom_emoji";
  }
  return "";
}

bool is_escapable(char c) {
  auto byte = static_cast<unsigned char>(c);
  return byte > 0 && byte <= 126;
}

MarkupError reserved_error(char c) {
  return MarkupError{std::string("Character '") + c + "' is reserved and must be escaped with the preceding '\\'"};
}

// Reads a "(url)" part starting at `in[i] == '('`, with backslash escapes.
// Returns the URL and sets `i` past ')', or nullopt when ')' is missing.
std::optional<std::string> read_parenthesized_url(std::string_view in, std::size_t& i) {
  std::string url;
  std::size_t j = i + 1;
  while (j < in.size() && in[j] != ')') {
    if (in[j] == '\\' && j + 1 < in.size() && is_escapable(in[j + 1])) {
      url += in[j + 1];
      j += 2;
      continue;
    }
    url += in[j++];
  }
  if (j == in.size()) {
    return std::nullopt;
  }
  i = j + 1;
  return url;
}

struct BlockQuote {
  std::size_t out_begin = 0;
  bool active = false;
  bool expandable = false;
};

void close_block_quote(BlockQuote& quote, std::size_t out_end, std::vector<RawEntity>& entities) {
  if (!quote.active) {
    return;
  }
  RawEntity entity;
  entity.type = quote.expandable ? "expandable_blockquote" : "blockquote";
  entity.begin = quote.out_begin;
  entity.end = out_end;
  entities.push_back(std::move(entity));
  quote = BlockQuote{};
}

}  // namespace

MarkupResult parse_markdown_v2(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::vector<MdOpen> stack;
  std::vector<RawEntity> entities;
  BlockQuote quote;
  std::size_t i = 0;
  std::size_t const n = in.size();
  auto starts = [&](std::size_t at, std::string_view token) { return in.substr(at).starts_with(token); };

  while (i < n) {
    char c = in[i];
    bool const literal_mode = !stack.empty() && (stack.back().kind == MdKind::code || stack.back().kind == MdKind::pre);

    if (c == '\\' && i + 1 < n && is_escapable(in[i + 1])) {
      out += in[i + 1];
      i += 2;
      continue;
    }
    if (literal_mode) {
      auto const& top = stack.back();
      bool closes = top.kind == MdKind::code ? c == '`' : starts(i, "```");
      if (!closes) {
        out += c;
        ++i;
        continue;
      }
      RawEntity entity;
      entity.type = md_entity_type(top.kind);
      entity.begin = top.out_begin;
      entity.end = out.size();
      entity.language = top.language;
      entities.push_back(std::move(entity));
      i += top.kind == MdKind::code ? 1 : 3;
      stack.pop_back();
      continue;
    }

    bool const line_start = i == 0 || in[i - 1] == '\n';
    if (line_start) {
      bool quoted = c == '>' || starts(i, "**>");
      if (!quoted) {
        close_block_quote(quote, out.size(), entities);
      } else {
        if (!quote.active) {
          quote.active = true;
          quote.out_begin = out.size();
          quote.expandable = false;
        }
        i += c == '>' ? 1 : 3;
        continue;
      }
    }

    if (c == '\n' && quote.active && i + 1 < n && in[i + 1] != '>' && !starts(i + 1, "**>")) {
      out += c;
      ++i;
      close_block_quote(quote, out.size(), entities);
      continue;
    }

    // An end token closes only the innermost open entity.
    if (!stack.empty()) {
      auto const& top = stack.back();
      std::size_t token_length = 0;
      switch (top.kind) {
        case MdKind::bold:
          token_length = c == '*' ? 1 : 0;
          break;
        case MdKind::italic:
          token_length = (c == '_' && !starts(i, "__")) ? 1 : 0;
          break;
        case MdKind::underline:
          token_length = starts(i, "__") ? 2 : 0;
          break;
        case MdKind::strikethrough:
          token_length = c == '~' ? 1 : 0;
          break;
        case MdKind::spoiler:
          token_length = starts(i, "||") ? 2 : 0;
          break;
        case MdKind::text_link:
        case MdKind::custom_emoji:
          token_length = c == ']' ? 1 : 0;
          break;
        case MdKind::code:
        case MdKind::pre:
          break;
      }
      if (token_length > 0) {
        MdOpen open = top;
        stack.pop_back();
        i += token_length;
        RawEntity entity;
        entity.begin = open.out_begin;
        entity.end = out.size();
        if (open.kind == MdKind::text_link) {
          std::string target;
          if (i < n && in[i] == '(') {
            std::size_t url_offset = i + 1;
            auto url = read_parenthesized_url(in, i);
            if (!url) {
              return MarkupError{"Can't find end of a URL" + offset_text(url_offset)};
            }
            target = std::move(*url);
          } else {
            target = out.substr(open.out_begin);
          }
          if (make_link_entity(target, entity)) {
            entities.push_back(std::move(entity));
          }
          continue;
        }
        if (open.kind == MdKind::custom_emoji) {
          if (i >= n || in[i] != '(') {
            return MarkupError{"Custom emoji entity must contain a tg://emoji URL"};
          }
          std::size_t url_offset = i + 1;
          auto url = read_parenthesized_url(in, i);
          if (!url) {
            return MarkupError{"Can't find end of a custom emoji URL" + offset_text(url_offset)};
          }
          if (!iequals_prefix(*url, "tg://emoji?id=")) {
            return MarkupError{"Custom emoji URL must have an emoji identifier"};
          }
          auto id = url->substr(std::strlen("tg://emoji?id="));
          if (id.empty() || !std::all_of(id.begin(), id.end(), [](char d) { return d >= '0' && d <= '9'; }) ||
              id.front() == '0') {
            return MarkupError{"Invalid custom emoji identifier specified"};
          }
          entity.type = "custom_emoji";
          entity.custom_emoji_id = id;
          entities.push_back(std::move(entity));
          continue;
        }
        entity.type = md_entity_type(open.kind);
        entities.push_back(std::move(entity));
        continue;
      }
    }

    // "||" at the end of a quoted line marks the quote as expandable.
    if (starts(i, "||") && quote.active && (i + 2 == n || in[i + 2] == '\n')) {
      quote.expandable = true;
      i += 2;
      continue;
    }

    MdOpen open{.kind = MdKind::bold, .out_begin = out.size(), .in_offset = i, .language = {}};
    switch (c) {
      case '*':
        open.kind = MdKind::bold;
        i += 1;
        break;
      case '_':
        open.kind = starts(i, "__") ? MdKind::underline : MdKind::italic;
        i += open.kind == MdKind::underline ? 2 : 1;
        break;
      case '~':
        open.kind = MdKind::strikethrough;
        i += 1;
        break;
      case '|':
        if (!starts(i, "||")) {
          return reserved_error(c);
        }
        open.kind = MdKind::spoiler;
        i += 2;
        break;
      case '[':
        open.kind = MdKind::text_link;
        i += 1;
        break;
      case '!':
        if (!starts(i, "![")) {
          return reserved_error(c);
        }
        open.kind = MdKind::custom_emoji;
        i += 2;
        break;
      case '`':
        if (starts(i, "```")) {
          open.kind = MdKind::pre;
          i += 3;
          // A language tag runs to the first whitespace; a newline right
          // after it is part of the syntax, not of the text.
          std::size_t j = i;
          while (j < n && !is_html_space(in[j]) && in[j] != '`') {
            ++j;
          }
          if (j < n && is_html_space(in[j]) && j > i) {
            open.language = std::string(in.substr(i, j - i));
            i = j;
          }
          if (i < n && (in[i] == '\n' || in[i] == '\r')) {
            char first = in[i];
            ++i;
            if (i < n && (in[i] == '\n' || in[i] == '\r') && in[i] != first) {
              ++i;
            }
          }
        } else {
          open.kind = MdKind::code;
          i += 1;
        }
        break;
      case ']':
      case '(':
      case ')':
      case '>':
      case '#':
      case '+':
      case '-':
      case '=':
      case '{':
      case '}':
      case '.':
        return reserved_error(c);
      default:
        out += c;
        ++i;
        continue;
    }
    open.out_begin = out.size();
    stack.push_back(std::move(open));
  }

  if (!stack.empty()) {
    auto const& top = stack.back();
    return MarkupError{std::string("Can't find end of ") + md_kind_name(top) + " entity" +
                       offset_text(top.in_offset)};
  }
  close_block_quote(quote, out.size(), entities);
  return finish(std::move(out), std::move(entities));
}

// ------------------------------------------------------ legacy Markdown ----

MarkupResult parse_markdown(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  std::vector<RawEntity> entities;
  std::size_t i = 0;
  std::size_t const n = in.size();

  while (i < n) {
    char c = in[i];
    if (c == '\\' && i + 1 < n && (in[i + 1] == '_' || in[i + 1] == '*' || in[i + 1] == '`' || in[i + 1] == '[')) {
      out += in[i + 1];
      i += 2;
      continue;
    }
    if (c != '_' && c != '*' && c != '`' && c != '[') {
      out += c;
      ++i;
      continue;
    }

    std::size_t const entity_offset = i;
    auto unterminated = MarkupError{"Can't find end of the entity starting" + offset_text(entity_offset)};
    RawEntity entity;
    if (c == '`' && in.substr(i).starts_with("```")) {
      i += 3;
      std::size_t newline = in.find('\n', i);
      std::size_t close = in.find("```", i);
      if (close == std::string_view::npos) {
        return unterminated;
      }
      if (newline != std::string_view::npos && newline < close) {
        auto language = in.substr(i, newline - i);
        if (!language.empty() && language.find(' ') == std::string_view::npos) {
          entity.language = std::string(language);
          i = newline + 1;
        }
      }
      entity.type = "pre";
      entity.begin = out.size();
      out += in.substr(i, close - i);
      entity.end = out.size();
      entities.push_back(std::move(entity));
      i = close + 3;
      continue;
    }
    if (c == '[') {
      std::size_t close = in.find(']', i + 1);
      if (close == std::string_view::npos) {
        return unterminated;
      }
      entity.begin = out.size();
      out += in.substr(i + 1, close - i - 1);
      entity.end = out.size();
      i = close + 1;
      if (i < n && in[i] == '(') {
        std::size_t url_end = in.find(')', i + 1);
        if (url_end == std::string_view::npos) {
          return unterminated;
        }
        auto target = in.substr(i + 1, url_end - i - 1);
        i = url_end + 1;
        if (make_link_entity(target, entity)) {
          entities.push_back(std::move(entity));
        }
      }
      continue;
    }
    std::size_t close = in.find(c, i + 1);
    if (close == std::string_view::npos) {
      return unterminated;
    }
    entity.type = c == '_' ? "italic" : (c == '*' ? "bold" : "code");
    entity.begin = out.size();
    out += in.substr(i + 1, close - i - 1);
    entity.end = out.size();
    entities.push_back(std::move(entity));
    i = close + 1;
  }
  return finish(std::move(out), std::move(entities));
}

// ------------------------------------------------- automatic entities ----

namespace {

bool is_word_byte(char c) {
  return is_ascii_alnum(c) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}

RawEntity make_raw(std::string type, std::size_t begin, std::size_t end) {
  RawEntity entity;
  entity.type = std::move(type);
  entity.begin = begin;
  entity.end = end;
  return entity;
}

bool inside_any(std::vector<std::pair<std::size_t, std::size_t>> const& ranges, std::size_t pos) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [pos](auto const& range) { return pos >= range.first && pos < range.second; });
}

// Byte offset of the UTF-16 offset `offset16` in `text`.
std::size_t byte_offset_of(std::string_view text, std::int64_t offset16) {
  std::int64_t units = 0;
  std::size_t i = 0;
  while (i < text.size() && units < offset16) {
    auto byte = static_cast<unsigned char>(text[i]);
    std::size_t width = byte < 0x80 ? 1 : byte < 0xE0 ? 2 : byte < 0xF0 ? 3 : 4;
    units += width == 4 ? 2 : 1;
    i += width;
  }
  return std::min(i, text.size());
}

}  // namespace

void detect_entities(FormattedText& formatted) {
  std::string_view const text = formatted.text;
  std::vector<std::pair<std::size_t, std::size_t>> excluded;
  for (auto const& entity : formatted.entities) {
    if (entity.type == "code" || entity.type == "pre" || entity.type == "text_link") {
      excluded.emplace_back(byte_offset_of(text, entity.offset),
                            byte_offset_of(text, entity.offset + entity.length));
    }
  }

  std::vector<RawEntity> found;
  std::size_t const n = text.size();
  std::size_t i = 0;
  while (i < n) {
    char c = text[i];
    bool const boundary = i == 0 || !is_word_byte(text[i - 1]);
    if (!boundary || inside_any(excluded, i)) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    if (c == '/' && (i == 0 || text[i - 1] != '/')) {
      while (j < n && (is_ascii_alnum(text[j]) || text[j] == '_') && j - i <= 64) {
        ++j;
      }
      if (j > i + 1) {
        if (j < n && text[j] == '@') {
          std::size_t k = j + 1;
          while (k < n && (is_ascii_alnum(text[k]) || text[k] == '_')) {
            ++k;
          }
          if (k - j - 1 >= 3) {
            j = k;
          }
        }
        if (j == n || (!is_word_byte(text[j]) && text[j] != '/')) {
          found.push_back(make_raw("bot_command", i, j));
        }
      }
      i = j;
      continue;
    }
    if (c == '@') {
      while (j < n && (is_ascii_alnum(text[j]) || text[j] == '_')) {
        ++j;
      }
      if (j - i - 1 >= 3 && j - i - 1 <= 32 && (j == n || !is_word_byte(text[j]))) {
        found.push_back(make_raw("mention", i, j));
      }
      i = j;
      continue;
    }
    if (c == '#') {
      bool has_letter = false;
      while (j < n && is_word_byte(text[j])) {
        has_letter = has_letter || !(text[j] >= '0' && text[j] <= '9');
        ++j;
      }
      if (has_letter) {
        found.push_back(make_raw("hashtag", i, j));
      }
      i = j;
      continue;
    }
    if (c == '$') {
      while (j < n && text[j] >= 'A' && text[j] <= 'Z') {
        ++j;
      }
      if (j - i - 1 >= 1 && j - i - 1 <= 8 && (j == n || !is_word_byte(text[j]))) {
        found.push_back(make_raw("cashtag", i, j));
      }
      i = j;
      continue;
    }
    if (iequals_prefix(text.substr(i), "http://") || iequals_prefix(text.substr(i), "https://")) {
      j = text.find("://", i) + 3;
      std::size_t host_begin = j;
      while (j < n && !is_html_space(text[j]) && text[j] != '<' && text[j] != '>' && text[j] != '"') {
        ++j;
      }
      while (j > host_begin && std::strchr(".,:;!?)'\"", text[j - 1]) != nullptr) {
        --j;
      }
      if (j > host_begin && text.substr(host_begin, j - host_begin).find('.') != std::string_view::npos) {
        found.push_back(make_raw("url", i, j));
      }
      i = std::max(j, i + 1);
      continue;
    }
    if (is_ascii_alnum(c)) {
      // An e-mail address: local@domain.tld, all ASCII.
      while (j < n && (is_ascii_alnum(text[j]) || text[j] == '.' || text[j] == '_' || text[j] == '-' ||
                       text[j] == '+')) {
        ++j;
      }
      if (j < n && text[j] == '@') {
        std::size_t k = j + 1;
        while (k < n && (is_ascii_alnum(text[k]) || text[k] == '.' || text[k] == '-')) {
          ++k;
        }
        while (k > j + 1 && text[k - 1] == '.') {
          --k;
        }
        auto domain = text.substr(j + 1, k - j - 1);
        auto dot = domain.rfind('.');
        if (dot != std::string_view::npos && dot > 0 && domain.size() - dot - 1 >= 2 &&
            (k == n || !is_word_byte(text[k]))) {
          found.push_back(make_raw("email", i, k));
          i = k;
          continue;
        }
      }
      i = j;
      continue;
    }
    ++i;
  }

  if (found.empty()) {
    return;
  }
  auto detected = convert_entities(formatted.text, std::move(found));
  formatted.entities.insert(formatted.entities.end(), std::make_move_iterator(detected.begin()),
                            std::make_move_iterator(detected.end()));
  stable_sort_items(formatted.entities, [](Entity const& a, Entity const& b) {
    if (a.offset != b.offset) {
      return a.offset < b.offset;
    }
    return a.length > b.length;
  });
}

void trim_formatted_text(FormattedText& formatted) {
  auto& text = formatted.text;
  std::size_t begin = 0;
  while (begin < text.size() && is_html_space(text[begin])) {
    ++begin;
  }
  std::size_t end = text.size();
  while (end > begin && is_html_space(text[end - 1])) {
    --end;
  }
  if (begin == 0 && end == text.size()) {
    return;
  }
  // Whitespace is ASCII, so byte counts equal UTF-16 counts for the cut parts.
  auto const cut_front = static_cast<std::int64_t>(begin);
  auto const new_length = static_cast<std::int64_t>(utf16_length(std::string_view(text).substr(begin, end - begin)));
  std::vector<Entity> kept;
  for (auto& entity : formatted.entities) {
    auto entity_begin = std::max<std::int64_t>(entity.offset - cut_front, 0);
    auto entity_end = std::min<std::int64_t>(entity.offset + entity.length - cut_front, new_length);
    if (entity_end <= entity_begin) {
      continue;
    }
    entity.offset = entity_begin;
    entity.length = entity_end - entity_begin;
    kept.push_back(std::move(entity));
  }
  formatted.entities = std::move(kept);
  text = text.substr(begin, end - begin);
}

boost::json::array entities_to_json(std::vector<Entity> const& entities, boost::json::storage_ptr storage) {
  boost::json::array result(storage);
  result.reserve(entities.size());
  for (auto const& entity : entities) {
    // Capacity for offset, length, type and one optional field.
    boost::json::object object(4, storage);
    object["offset"] = entity.offset;
    object["length"] = entity.length;
    object["type"] = entity.type;
    if (entity.type == "text_link") {
      object["url"] = entity.url;
    } else if (entity.type == "pre" && !entity.language.empty()) {
      object["language"] = entity.language;
    } else if (entity.type == "custom_emoji") {
      object["custom_emoji_id"] = entity.custom_emoji_id;
    } else if (entity.type == "text_mention") {
      boost::json::object user(storage);
      user["id"] = entity.user_id;
      user["is_bot"] = false;
      user["first_name"] = "";
      object["user"] = std::move(user);
    }
    result.push_back(std::move(object));
  }
  return result;
}

std::optional<std::vector<Entity>> entities_from_json(boost::json::value const& value, std::size_t text_utf16_length) {
  boost::json::value parsed;
  boost::json::value const* source = &value;
  if (value.is_string()) {
    boost::system::error_code ec;
    parsed = boost::json::parse(value.get_string(), ec);
    if (ec) {
      return std::nullopt;
    }
    source = &parsed;
  }
  if (!source->is_array()) {
    return std::nullopt;
  }
  std::vector<Entity> result;
  auto const limit = static_cast<std::int64_t>(text_utf16_length);
  for (auto const& item : source->get_array()) {
    if (!item.is_object()) {
      return std::nullopt;
    }
    auto const& object = item.get_object();
    auto const* type = object.if_contains("type");
    auto const* offset = object.if_contains("offset");
    auto const* length = object.if_contains("length");
    if (type == nullptr || !type->is_string() || offset == nullptr || !offset->is_int64() || length == nullptr ||
        !length->is_int64()) {
      return std::nullopt;
    }
    Entity entity;
    entity.type = std::string(type->get_string());
    entity.offset = std::max<std::int64_t>(offset->get_int64(), 0);
    auto end = std::min<std::int64_t>(offset->get_int64() + length->get_int64(), limit);
    if (end <= entity.offset) {
      continue;
    }
    entity.length = end - entity.offset;
    if (auto const* url = object.if_contains("url"); url != nullptr && url->is_string()) {
      entity.url = std::string(url->get_string());
    }
    if (auto const* language = object.if_contains("language"); language != nullptr && language->is_string()) {
      entity.language = std::string(language->get_string());
    }
    if (auto const* emoji = object.if_contains("custom_emoji_id"); emoji != nullptr && emoji->is_string()) {
      entity.custom_emoji_id = std::string(emoji->get_string());
    }
    if (auto const* user = object.if_contains("user"); user != nullptr && user->is_object()) {
      if (auto const* id = user->get_object().if_contains("id"); id != nullptr && id->is_int64()) {
        entity.user_id = id->get_int64();
      }
    }
    result.push_back(std::move(entity));
  }
  return result;
}

}  // namespace sluice::sandbox
