#include <sluice/runtime/logging.hpp>

#include <mutex>
#include <string>

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

}  // namespace sluice::runtime
