#pragma once

#include <cmath>
#include <cstdint>

#include <boost/json/value.hpp>

namespace sluice::sandbox {

// Boost.JSON writes the double 30.0 as 3E1, which clients that expect an
// integer reject. A whole value goes out as an integer, any other as a
// double.
inline boost::json::value json_number(double value) {
  constexpr double kLargestExact = 9007199254740992.0;  // 2^53
  if (value == std::floor(value) && std::fabs(value) <= kLargestExact) {
    return static_cast<std::int64_t>(value);
  }
  return value;
}

}  // namespace sluice::sandbox
