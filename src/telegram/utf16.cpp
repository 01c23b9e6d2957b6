#include <sluice/telegram/utf16.hpp>

#include <cstdint>
#include <limits>

namespace sluice::telegram {
namespace {

constexpr std::size_t kNotFound = std::numeric_limits<std::size_t>::max();

// One decoded step: the bytes a code point takes and its UTF-16 units.
struct Step {
  std::size_t bytes;
  std::size_t units;
};

// Decodes the code point at `position` (which must be inside `text`). A
// byte that does not start a valid, shortest-form UTF-8 sequence of a
// scalar value is one step of one unit.
Step next_step(std::string_view text, std::size_t position) noexcept {
  constexpr Step kInvalid{1, 1};
  const auto lead = static_cast<unsigned char>(text[position]);
  if (lead < 0x80) {
    return {1, 1};
  }

  std::size_t continuation = 0;
  std::uint32_t code_point = 0;
  std::uint32_t minimum = 0;
  if ((lead & 0xE0) == 0xC0) {
    continuation = 1;
    code_point = lead & 0x1F;
    minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    continuation = 2;
    code_point = lead & 0x0F;
    minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    continuation = 3;
    code_point = lead & 0x07;
    minimum = 0x10000;
  } else {
    return kInvalid;
  }
  if (text.size() - position <= continuation) {
    return kInvalid;
  }
  for (std::size_t i = 1; i <= continuation; ++i) {
    const auto byte = static_cast<unsigned char>(text[position + i]);
    if ((byte & 0xC0) != 0x80) {
      return kInvalid;
    }
    code_point = (code_point << 6) | (byte & 0x3F);
  }
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  if (code_point < minimum || code_point > 0x10FFFF || surrogate) {
    return kInvalid;
  }
  return {continuation + 1, code_point >= 0x10000 ? 2U : 1U};
}

}  // namespace

std::size_t utf16_length(std::string_view text) noexcept {
  std::size_t units = 0;
  for (std::size_t position = 0; position < text.size();) {
    const Step step = next_step(text, position);
    position += step.bytes;
    units += step.units;
  }
  return units;
}

std::optional<ByteRange> utf16_to_bytes(std::string_view text, std::int64_t offset,
                                        std::int64_t length) noexcept {
  if (offset < 0 || length < 0 || length > std::numeric_limits<std::int64_t>::max() - offset) {
    return std::nullopt;
  }
  const auto first = static_cast<std::uint64_t>(offset);
  const auto last = static_cast<std::uint64_t>(offset + length);

  std::size_t start = kNotFound;
  std::uint64_t units = 0;
  std::size_t position = 0;
  while (true) {
    if (units == first && start == kNotFound) {
      start = position;
    }
    if (units == last) {
      if (start == kNotFound) {
        return std::nullopt;
      }
      return ByteRange{.offset = start, .length = position - start};
    }
    // Past the end, or jumped over a boundary inside a surrogate pair.
    if (position == text.size() || units > last) {
      return std::nullopt;
    }
    const Step step = next_step(text, position);
    position += step.bytes;
    units += step.units;
  }
}

std::optional<Utf16Range> bytes_to_utf16(std::string_view text, std::size_t offset,
                                         std::size_t length) noexcept {
  if (offset > text.size() || length > text.size() - offset) {
    return std::nullopt;
  }
  const std::size_t last = offset + length;

  std::int64_t start = -1;
  std::int64_t units = 0;
  std::size_t position = 0;
  while (true) {
    if (position == offset && start < 0) {
      start = units;
    }
    if (position == last) {
      if (start < 0) {
        return std::nullopt;
      }
      return Utf16Range{.offset = start, .length = units - start};
    }
    // A boundary fell inside a UTF-8 sequence.
    if (position > last) {
      return std::nullopt;
    }
    const Step step = next_step(text, position);
    position += step.bytes;
    units += static_cast<std::int64_t>(step.units);
  }
}

std::optional<std::string_view> entity_text(std::string_view text,
                                            const MessageEntity& entity) noexcept {
  const auto range = utf16_to_bytes(text, entity.offset, entity.length);
  if (!range) {
    return std::nullopt;
  }
  return text.substr(range->offset, range->length);
}

}  // namespace sluice::telegram
