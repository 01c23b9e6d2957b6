#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <ranges>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace sluice::redis {

namespace detail {

// Character types and bool would format as numbers; they are rejected at
// compile time so that `arg('x')` or `arg(true)` cannot send "120" or "1".
// signed char and unsigned char stay allowed because std::int8_t and
// std::uint8_t are those types.
template <typename T>
concept FormattableInteger =
    std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
    !std::same_as<T, wchar_t> && !std::same_as<T, char8_t> && !std::same_as<T, char16_t> &&
    !std::same_as<T, char32_t>;

}  // namespace detail

/// A list of arguments encoded as RESP bulk strings as they are added.
///
/// Strings are sent byte for byte (binary-safe). Integers are formatted in
/// decimal and floating-point numbers in the shortest form that reads back
/// to the same value (`std::to_chars`, so the locale never matters; infinity
/// is "inf" or "-inf", which Redis accepts for scores).
class Arguments {
 public:
  Arguments() = default;

  /// Appends each value in order, formatted as `arg` formats it.
  template <typename... Values>
    requires(sizeof...(Values) > 0 &&
             (!std::same_as<std::remove_cvref_t<Values>, Arguments> && ...))
  explicit Arguments(const Values&... values) {
    (arg(values), ...);
  }

  Arguments& arg(std::string_view value);
  Arguments& arg(const char* value) { return arg(std::string_view(value)); }
  Arguments& arg(const std::string& value) { return arg(std::string_view(value)); }

  template <detail::FormattableInteger T>
  Arguments& arg(T value) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
    return arg(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }

  template <std::floating_point T>
  Arguments& arg(T value) {
    char digits[40];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
    return arg(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }

  /// Appends every element of `values` (strings or numbers).
  template <std::ranges::input_range Range>
  Arguments& args(const Range& values) {
    for (const auto& value : values) {
      arg(value);
    }
    return *this;
  }

  /// Appends every argument of `other`.
  Arguments& append(const Arguments& other);

  /// Number of arguments.
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }

  /// The encoded arguments without the array header: `$<len>\r\n<bytes>\r\n`
  /// for each argument.
  const std::string& encoded_body() const noexcept { return body_; }

 private:
  std::string body_;
  std::size_t count_ = 0;
};

/// One Redis command: the name followed by its arguments, encoded as a RESP
/// array of bulk strings.
///
/// ```
/// redis::Command set("SET", key, value, "EX", 60);
/// redis::Command del("DEL");
/// del.args(keys);
/// ```
class Command : public Arguments {
 public:
  Command() = default;

  template <typename... Values>
  explicit Command(std::string_view name, const Values&... values) {
    arg(name);
    (arg(values), ...);
  }

  /// The first argument (the command name, as given); empty for an empty
  /// command.
  std::string_view name() const noexcept;

  /// Appends the complete RESP encoding (`*<count>\r\n` and the body) to `out`.
  void encode_to(std::string& out) const;
  std::string encode() const;
};

}  // namespace sluice::redis
