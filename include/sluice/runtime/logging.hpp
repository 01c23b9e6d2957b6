#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include <spdlog/common.h>
#include <spdlog/logger.h>

namespace sluice::runtime {

/// Returns the spdlog logger named `name` (for example "sluice.runtime"),
/// creating it with the default logger's sinks and level on first use.
///
/// Thread-safe. Each module keeps one logger, so its verbosity can be set
/// on its own with `spdlog::get(name)->set_level(...)`.
std::shared_ptr<spdlog::logger> module_logger(std::string_view name);

/// The log level names that parse_log_level accepts, for usage messages.
inline constexpr std::string_view kLogLevelNames = "trace, debug, info, warn, error, critical, off";

/// Returns the spdlog level named `name` (one of kLogLevelNames), or
/// std::nullopt for any other text. Unlike spdlog::level::from_str, an
/// unknown name is not turned into `off`.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name);

}  // namespace sluice::runtime
