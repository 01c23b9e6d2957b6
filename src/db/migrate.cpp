#include <sluice/db/migrate.hpp>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include <sluice/db/database.hpp>

namespace sluice::db {
namespace asio = boost::asio;

namespace {

// pg_advisory_lock key that serialises concurrent migration runs ("sluimigr").
constexpr std::int64_t kAdvisoryLockKey = 0x736c75696d696772;

constexpr std::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)";

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// FNV-1a 64: detects a migration edited after it was applied.
std::string checksum(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", hash);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw DbError(fmt::format("cannot read migration `{}`", path.string()));
  }
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto seconds = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

}  // namespace

std::vector<MigrationFile> list_migrations(const std::filesystem::path& folder) {
  std::error_code error;
  if (!std::filesystem::is_directory(folder, error)) {
    throw DbError(fmt::format("migration folder `{}` does not exist", folder.string()));
  }
  std::vector<MigrationFile> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.path().extension() != ".sql") {
      continue;
    }
    const auto stem = name.substr(0, name.size() - 4);
    const auto underscore = stem.find('_');
    std::int64_t version = -1;
    bool valid = underscore != std::string::npos && underscore > 0 && underscore + 1 < stem.size();
    if (valid) {
      const auto [end, parse_error] = std::from_chars(stem.data(), stem.data() + underscore, version);
      valid = parse_error == std::errc{} && end == stem.data() + underscore && version >= 0 &&
              std::all_of(stem.begin() + static_cast<std::ptrdiff_t>(underscore) + 1, stem.end(), valid_name_char);
    }
    if (!valid) {
      throw DbError(fmt::format("migration file `{}` in `{}` is not named NNNN_name.sql", name, folder.string()));
    }
    files.push_back(MigrationFile{.version = version, .name = name, .path = entry.path()});
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  for (std::size_t i = 1; i < files.size(); ++i) {
    if (files[i].version == files[i - 1].version) {
      throw DbError(fmt::format("migrations `{}` and `{}` have the same version {}", files[i - 1].name, files[i].name,
                                files[i].version));
    }
  }
  return files;
}

asio::awaitable<MigrationReport> migrate(asio::any_io_executor executor, std::string url,
                                         std::filesystem::path folder, MigrateOptions options) {
  const auto files = list_migrations(folder);
  const auto logger = detail::db_logger();

  DatabaseOptions db_options;
  db_options.pool = PoolOptions::null_pool();
  db_options.pool.name = "migrate";
  db_options.postgres.application_name = "sluice-migrate";
  db_options.postgres.query_timeout = std::chrono::milliseconds{0};
  db_options.postgres.statement_cache = false;
  db_options.sqlite.blocking_pool = options.blocking_pool;
  Database db(executor, url, db_options);

  MigrationReport report;
  std::exception_ptr failure;
  try {
    auto conn = co_await db.acquire();
    const bool postgres = db.backend() == Backend::postgresql;
    if (postgres) {
      const auto set_lock_timeout = fmt::format("SET lock_timeout = {}", options.lock_timeout.count());
      co_await conn->execute(set_lock_timeout);
      co_await conn->execute("SET statement_timeout = 0");
      co_await conn->query("SELECT pg_advisory_lock($1)", kAdvisoryLockKey);
    }
    co_await conn->execute(kCreateTable);

    std::map<std::int64_t, std::string> applied;
    auto rows = co_await conn->query("SELECT version, checksum FROM schema_migrations");
    for (const auto row : rows) {
      applied.emplace(row.get<std::int64_t>(0), row.get<std::string>(1));
    }

    for (const auto& file : files) {
      const auto text = read_file(file.path);
      const auto sum = checksum(text);
      if (auto it = applied.find(file.version); it != applied.end()) {
        ++report.already_applied;
        if (it->second != sum) {
          logger->warn("migration changed after it was applied version={} file={}", file.version, file.name);
        }
        continue;
      }
      if (options.dry_run) {
        report.applied.push_back(file);
        continue;
      }

      const auto start = Clock::now();
      auto tx = co_await conn->begin();
      try {
        co_await conn->execute_script(text);
      } catch (const SqlError& e) {
        throw SqlError(fmt::format("migration {} failed: {}", file.name, e.what()), e.sqlstate(), e.sqlite_code());
      }
      co_await conn->execute("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                             file.version, file.name, sum, utc_now());
      co_await tx.commit();
      report.applied.push_back(file);
      logger->info("applied migration version={} file={} elapsed_ms={}", file.version, file.name,
                   std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
    }
    if (postgres) {
      co_await conn->query("SELECT pg_advisory_unlock($1)", kAdvisoryLockKey);
    }
  } catch (...) {
    failure = std::current_exception();
  }
  co_await db.close();
  if (failure) {
    std::rethrow_exception(failure);
  }
  co_return report;
}

}  // namespace sluice::db
