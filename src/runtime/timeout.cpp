#include <sluice/runtime/timeout.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace sluice::runtime {

TimeoutError::TimeoutError(std::chrono::steady_clock::duration limit)
    : std::runtime_error(fmt::format(
          "operation timed out after {} ms",
          std::chrono::duration_cast<std::chrono::milliseconds>(limit).count())),
      limit_(limit) {}

}  // namespace sluice::runtime
