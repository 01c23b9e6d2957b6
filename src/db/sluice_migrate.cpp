// sluice-migrate: applies NNNN_name.sql migrations to a database.
//
//   sluice-migrate [--dry-run] [--lock-timeout MS] [URL] DIR
//
// URL defaults to the DATABASE_URL environment variable, which keeps the
// password out of the process list.

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <sluice/db/errors.hpp>
#include <sluice/db/migrate.hpp>
#include <sluice/runtime/blocking_pool.hpp>

namespace {

constexpr const char* kUsage =
    "usage: sluice-migrate [--dry-run] [--lock-timeout MS] [URL] DIR\n"
    "Applies the NNNN_name.sql files of DIR that the database has not recorded in\n"
    "schema_migrations, in order, each in its own transaction.\n"
    "  URL                postgresql://... or sqlite:///path.db (default: $DATABASE_URL)\n"
    "  --dry-run          list the migrations that would be applied\n"
    "  --lock-timeout MS  PostgreSQL lock_timeout in milliseconds (default 5000)\n";

}  // namespace

int main(int argc, char** argv) {
  sluice::db::MigrateOptions options;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--dry-run") {
      options.dry_run = true;
    } else if (arg == "--lock-timeout" && i + 1 < argc) {
      options.lock_timeout = std::chrono::milliseconds{std::atoll(argv[++i])};
    } else if (arg.starts_with("--")) {
      std::cerr << "sluice-migrate: unknown option " << arg << "\n" << kUsage;
      return 2;
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() == 1) {
    const char* url = std::getenv("DATABASE_URL");
    if (url == nullptr) {
      std::cerr << "sluice-migrate: no URL given and DATABASE_URL is not set\n" << kUsage;
      return 2;
    }
    positional.insert(positional.begin(), url);
  }
  if (positional.size() != 2) {
    std::cerr << kUsage;
    return 2;
  }

  boost::asio::io_context ioc;
  sluice::runtime::BlockingPool blocking(2, "migrate");
  options.blocking_pool = &blocking;
  int status = 1;
  boost::asio::co_spawn(
      ioc, sluice::db::migrate(ioc.get_executor(), positional[0], positional[1], options),
      [&](std::exception_ptr error, sluice::db::MigrationReport report) {
        if (error) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            std::cerr << "sluice-migrate: " << e.what() << "\n";
          }
          return;
        }
        for (const auto& file : report.applied) {
          std::cout << (options.dry_run ? "would apply " : "applied ") << file.name << "\n";
        }
        std::cout << report.applied.size() << (options.dry_run ? " to apply, " : " applied, ")
                  << report.already_applied << " already applied\n";
        status = 0;
      });
  ioc.run();
  blocking.join();
  return status;
}
