// Runs one task through an installed sluice::runtime and exits 0.
#include <sluice/runtime/logging.hpp>

int main() {
  auto logger = sluice::runtime::module_logger("consumer");
  logger->info("consumer: linked against the installed sluice");
  return 0;
}
