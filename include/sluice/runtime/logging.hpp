#pragma once

#include <memory>
#include <string_view>

#include <spdlog/logger.h>

namespace sluice::runtime {

/// Returns the spdlog logger named `name` (for example "sluice.runtime"),
/// creating it with the default logger's sinks and level on first use.
///
/// Thread-safe. Each module keeps one logger, so its verbosity can be set
/// on its own with `spdlog::get(name)->set_level(...)`.
std::shared_ptr<spdlog::logger> module_logger(std::string_view name);

}  // namespace sluice::runtime
