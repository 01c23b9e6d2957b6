#include <sluice/runtime/logging.hpp>

#include <array>
#include <mutex>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

namespace sluice::runtime {

std::shared_ptr<spdlog::logger> module_logger(std::string_view name) {
  // spdlog's registry is thread-safe, but get-then-register is not atomic.
  static std::mutex creation_mutex;
  std::string key(name);
  if (auto existing = spdlog::get(key)) {
    return existing;
  }

  std::lock_guard lock(creation_mutex);
  if (auto existing = spdlog::get(key)) {
    return existing;
  }
  auto base = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(key, base->sinks().begin(), base->sinks().end());
  logger->set_level(base->level());
  spdlog::register_logger(logger);
  return logger;
}

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
  namespace level = spdlog::level;
  constexpr std::array<std::pair<std::string_view, level::level_enum>, 7> kLevels{{
      {"trace", level::trace},
      {"debug", level::debug},
      {"info", level::info},
      {"warn", level::warn},
      {"error", level::err},
      {"critical", level::critical},
      {"off", level::off},
  }};
  for (const auto& [level_name, value] : kLevels) {
    if (level_name == name) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace sluice::runtime
