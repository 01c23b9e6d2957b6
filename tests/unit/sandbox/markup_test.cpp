#include <sluice/sandbox/markup.hpp>

#include <string>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace sluice::sandbox {
namespace {

FormattedText expect_text(MarkupResult const& result) {
  if (auto const* error = std::get_if<MarkupError>(&result)) {
    ADD_FAILURE() << "unexpected markup error: " << error->message;
    return {};
  }
  return std::get<FormattedText>(result);
}

std::string expect_error(MarkupResult const& result) {
  if (auto const* error = std::get_if<MarkupError>(&result)) {
    return error->message;
  }
  ADD_FAILURE() << "markup parsed although an error was expected: " << std::get<FormattedText>(result).text;
  return {};
}

Entity entity(std::string type, std::int64_t offset, std::int64_t length) {
  Entity result;
  result.type = std::move(type);
  result.offset = offset;
  result.length = length;
  return result;
}

TEST(Markup, Utf16LengthCountsSurrogatePairs) {
  EXPECT_EQ(utf16_length("abc"), 3u);
  EXPECT_EQ(utf16_length("\xD0\xBF\xD1\x80\xD0\xB8"), 3u);  // Cyrillic, 2 bytes each
  EXPECT_EQ(utf16_length("\xF0\x9F\x98\x80"), 2u);          // one emoji outside the BMP
  EXPECT_EQ(utf16_length("\xE2\x9E\xA1"), 1u);              // an arrow inside the BMP
}

TEST(Markup, ValidUtf8RejectsMalformed) {
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF0\x9F\x98"));      // truncated
  EXPECT_FALSE(is_valid_utf8("\xFF"));
}

TEST(Markup, HtmlBoldAndItalicGiveEntities) {
  auto text = expect_text(parse_html("<b>bold</b> and <i>it</i>"));
  EXPECT_EQ(text.text, "bold and it");
  ASSERT_EQ(text.entities.size(), 2u);
  EXPECT_EQ(text.entities[0], entity("bold", 0, 4));
  EXPECT_EQ(text.entities[1], entity("italic", 9, 2));
}

TEST(Markup, HtmlOffsetsAreUtf16) {
  // The emoji before the tag takes two UTF-16 code units.
  auto text = expect_text(parse_html("\xF0\x9F\x98\x80 <u>x</u>"));
  ASSERT_EQ(text.entities.size(), 1u);
  EXPECT_EQ(text.entities[0], entity("underline", 3, 1));
}

TEST(Markup, HtmlDecodesCharacterReferences) {
  auto text = expect_text(parse_html("&lt;a&gt; &amp; &quot;q&quot; &#65;&#x42; &copy; &lt"));
  EXPECT_EQ(text.text, "<a> & \"q\" AB &copy; <");
}

TEST(Markup, HtmlLinkBecomesTextLink) {
  auto text = expect_text(parse_html("<a href=\"example.org\">site</a>"));
  ASSERT_EQ(text.entities.size(), 1u);
  EXPECT_EQ(text.entities[0].type, "text_link");
  EXPECT_EQ(text.entities[0].url, "http://example.org/");
}

TEST(Markup, HtmlPreWithLanguageMerges) {
  auto text = expect_text(parse_html("<pre><code class=\"language-cpp\">int x;</code></pre>"));
  ASSERT_EQ(text.entities.size(), 1u);
  EXPECT_EQ(text.entities[0].type, "pre");
  EXPECT_EQ(text.entities[0].language, "cpp");
}

TEST(Markup, HtmlUnsupportedTagIsError) {
  EXPECT_EQ(expect_error(parse_html("a <br> b")), "Unsupported start tag \"br\" at byte offset 2");
  EXPECT_EQ(expect_error(parse_html("1 < 2")), "Unsupported start tag \"\" at byte offset 2");
}

TEST(Markup, HtmlUnbalancedTagsAreErrors) {
  EXPECT_EQ(expect_error(parse_html("<b>open")), "Can't find end tag corresponding to start tag \"b\"");
  EXPECT_EQ(expect_error(parse_html("close</b>")), "Unexpected end tag at byte offset 5");
  EXPECT_EQ(expect_error(parse_html("<b>x</i>")), "Unmatched end tag at byte offset 4, expected \"</b>\", found \"</i>\"");
  EXPECT_EQ(expect_error(parse_html("<b>x</b")), "Unclosed end tag at byte offset 4");
  EXPECT_EQ(expect_error(parse_html("x <b")), "Unclosed start tag at byte offset 2");
  EXPECT_EQ(expect_error(parse_html("<b =x>y</b>")), "Empty attribute name in the tag \"b\" at byte offset 0");
}

TEST(Markup, HtmlSpanNeedsSpoilerClass) {
  EXPECT_EQ(expect_error(parse_html("<span>x</span>")), "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0");
  auto text = expect_text(parse_html("<span class=\"tg-spoiler\">x</span>"));
  ASSERT_EQ(text.entities.size(), 1u);
  EXPECT_EQ(text.entities[0].type, "spoiler");
}

TEST(Markup, HtmlSurrogateReferenceIsError) {
  EXPECT_EQ(expect_error(parse_html("&#xD800;")),
            "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate "
            "code units");
}

TEST(Markup, MarkdownV2ReservedCharacterIsError) {
  EXPECT_EQ(expect_error(parse_markdown_v2("Version 1.0")),
            "Character '.' is reserved and must be escaped with the preceding '\\'");
  EXPECT_EQ(expect_error(parse_markdown_v2("a-b")), "Character '-' is reserved and must be escaped with the preceding '\\'");
  EXPECT_EQ(expect_error(parse_markdown_v2("x!")), "Character '!' is reserved and must be escaped with the preceding '\\'");
}

TEST(Markup, MarkdownV2EscapesAreLiteral) {
  auto text = expect_text(parse_markdown_v2("Version 1\\.0 \\- \\*not bold\\*"));
  EXPECT_EQ(text.text, "Version 1.0 - *not bold*");
  EXPECT_TRUE(text.entities.empty());
}

TEST(Markup, MarkdownV2EntitiesNest) {
  auto text = expect_text(parse_markdown_v2("*bold _italic_* __under__ ~strike~ ||spoiler|| `code`"));
  EXPECT_EQ(text.text, "bold italic under strike spoiler code");
  ASSERT_EQ(text.entities.size(), 6u);
  EXPECT_EQ(text.entities[0], entity("bold", 0, 11));
  EXPECT_EQ(text.entities[1], entity("italic", 5, 6));
  EXPECT_EQ(text.entities[2], entity("underline", 12, 5));
  EXPECT_EQ(text.entities[3], entity("strikethrough", 18, 6));
  EXPECT_EQ(text.entities[4], entity("spoiler", 25, 7));
  EXPECT_EQ(text.entities[5], entity("code", 33, 4));
}

TEST(Markup, MarkdownV2UnclosedEntityIsError) {
  EXPECT_EQ(expect_error(parse_markdown_v2("a *bold")), "Can't find end of Bold entity at byte offset 2");
  EXPECT_EQ(expect_error(parse_markdown_v2("_x")), "Can't find end of Italic entity at byte offset 0");
  EXPECT_EQ(expect_error(parse_markdown_v2("```\ncode")), "Can't find end of Pre entity at byte offset 0");
  EXPECT_EQ(expect_error(parse_markdown_v2("[site](example\\.org")), "Can't find end of a URL at byte offset 7");
}

TEST(Markup, MarkdownV2LinkAndPre) {
  auto text = expect_text(parse_markdown_v2("[site](https://example.org/a) ```python\nprint(1)```"));
  EXPECT_EQ(text.text, "site print(1)");
  ASSERT_EQ(text.entities.size(), 2u);
  EXPECT_EQ(text.entities[0].type, "text_link");
  EXPECT_EQ(text.entities[0].url, "https://example.org/a");
  EXPECT_EQ(text.entities[1].type, "pre");
  EXPECT_EQ(text.entities[1].language, "python");
  EXPECT_EQ(text.entities[1].offset, 5);
  EXPECT_EQ(text.entities[1].length, 8);
}

TEST(Markup, MarkdownV2BlockQuote) {
  auto text = expect_text(parse_markdown_v2(">quoted\n>more\nplain"));
  EXPECT_EQ(text.text, "quoted\nmore\nplain");
  ASSERT_EQ(text.entities.size(), 1u);
  EXPECT_EQ(text.entities[0], entity("blockquote", 0, 12));
}

TEST(Markup, LegacyMarkdownParsesAndRejects) {
  auto text = expect_text(parse_markdown("*bold* _it_ `c` [l](http://example.org)"));
  EXPECT_EQ(text.text, "bold it c l");
  ASSERT_EQ(text.entities.size(), 4u);
  EXPECT_EQ(text.entities[0], entity("bold", 0, 4));
  EXPECT_EQ(expect_error(parse_markdown("a *b")), "Can't find end of the entity starting at byte offset 2");
}

TEST(Markup, DetectsCommandsMentionsAndUrls) {
  FormattedText text{"/start@my_bot hi @alice #tag $USD https://example.org/x. mail bob@example.com", {}};
  detect_entities(text);
  std::vector<std::string> types;
  for (auto const& item : text.entities) {
    types.push_back(item.type);
  }
  std::vector<std::string> expected = {"bot_command", "mention", "hashtag", "cashtag", "url", "email"};
  EXPECT_EQ(types, expected);
  ASSERT_FALSE(text.entities.empty());
  EXPECT_EQ(text.entities[0], entity("bot_command", 0, 13));
  EXPECT_EQ(text.entities[4], entity("url", 34, 21));
}

TEST(Markup, DetectSkipsCodeEntities) {
  FormattedText text{"/inside code", {entity("code", 0, 7)}};
  detect_entities(text);
  ASSERT_EQ(text.entities.size(), 1u);
  EXPECT_EQ(text.entities[0].type, "code");
}

TEST(Markup, TrimShiftsEntities) {
  FormattedText text{"  hi there \n", {entity("bold", 2, 2), entity("italic", 0, 2)}};
  trim_formatted_text(text);
  EXPECT_EQ(text.text, "hi there");
  ASSERT_EQ(text.entities.size(), 1u);
  EXPECT_EQ(text.entities[0], entity("bold", 0, 2));
}

TEST(Markup, EntitiesJsonRoundTrip) {
  auto json = entities_to_json({entity("bold", 1, 2)});
  EXPECT_EQ(boost::json::serialize(json), R"([{"offset":1,"length":2,"type":"bold"}])");
  auto parsed = entities_from_json(boost::json::value(R"([{"type":"italic","offset":0,"length":99}])"), 5);
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0], entity("italic", 0, 5));
  EXPECT_FALSE(entities_from_json(boost::json::value("not json"), 5).has_value());
}

}  // namespace
}  // namespace sluice::sandbox
