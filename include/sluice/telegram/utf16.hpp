#pragma once

// Conversions between the UTF-16 offsets of message entities and byte
// offsets in UTF-8 text.
//
// Telegram counts MessageEntity offset and length in UTF-16 code units
// (https://core.telegram.org/bots/api#messageentity): a character outside
// the Basic Multilingual Plane, such as most emoji, counts 2, everything
// else 1. Combining marks and the parts of a ZWJ sequence are separate
// code points and count separately.
//
// Invalid UTF-8 never causes undefined behaviour: each byte that does not
// start a valid sequence counts as one replacement character (1 unit), as
// a decoder that substitutes U+FFFD would see it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <sluice/telegram/generated/types/message_entity.hpp>

namespace sluice::telegram {

/// A range of bytes in UTF-8 text.
struct ByteRange {
  std::size_t offset = 0;
  std::size_t length = 0;

  bool operator==(const ByteRange&) const = default;
};

/// A range in UTF-16 code units, as MessageEntity stores it.
struct Utf16Range {
  std::int64_t offset = 0;
  std::int64_t length = 0;

  bool operator==(const Utf16Range&) const = default;
};

/// Length of `text` in UTF-16 code units.
[[nodiscard]] std::size_t utf16_length(std::string_view text) noexcept;

/// Converts a UTF-16 range into a byte range of `text`.
///
/// Returns std::nullopt when the range is negative, ends past the text, or
/// starts or ends between the two halves of a surrogate pair.
[[nodiscard]] std::optional<ByteRange> utf16_to_bytes(std::string_view text, std::int64_t offset,
                                                      std::int64_t length) noexcept;

/// Converts a byte range of `text` into a UTF-16 range.
///
/// Returns std::nullopt when the range ends past the text or starts or ends
/// inside a UTF-8 sequence.
[[nodiscard]] std::optional<Utf16Range> bytes_to_utf16(std::string_view text, std::size_t offset,
                                                       std::size_t length) noexcept;

/// The part of `text` that `entity` covers, or std::nullopt when its
/// offsets do not fit `text` (see utf16_to_bytes).
[[nodiscard]] std::optional<std::string_view> entity_text(std::string_view text,
                                                          const MessageEntity& entity) noexcept;

}  // namespace sluice::telegram
