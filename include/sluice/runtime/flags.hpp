#pragma once

// Checks of command-line flag values, shared by the sluice programs.

#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace sluice::runtime {

/// Returns `text` as a whole number in [min, max], converted to T. Throws
/// std::invalid_argument naming the flag (`flag` without "--"), the value
/// and the range otherwise. Read numeric flags as text and check them here:
/// Boost.Program_options turns "-1" into a huge number for an unsigned type.
template <class T = std::int64_t>
T parse_integer_flag(std::string_view flag, std::string_view text, std::int64_t min, std::int64_t max) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc{} || stop != end || value < min || value > max) {
    throw std::invalid_argument("invalid value '" + std::string(text) + "' for --" + std::string(flag) +
                                ": expected a whole number from " + std::to_string(min) + " to " +
                                std::to_string(max));
  }
  return static_cast<T>(value);
}

}  // namespace sluice::runtime
