#pragma once

#include <chrono>
#include <string>

namespace sluice::db::detail {

/// Formats a duration for messages: "5 s", "1.5 s", "250 ms", "40 us".
std::string format_duration(std::chrono::nanoseconds value);

}  // namespace sluice::db::detail
