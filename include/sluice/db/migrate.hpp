#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::runtime {
class BlockingPool;
}

namespace sluice::db {

/// One migration file: `NNNN_name.sql` (the version is the leading number).
struct MigrationFile {
  std::int64_t version = 0;
  std::string name;  ///< file name, e.g. "0003_add_users.sql"
  std::filesystem::path path;
};

struct MigrateOptions {
  /// PostgreSQL `lock_timeout`, set first on the migration connection, so
  /// that a migration that needs a lock held by the running bot fails fast
  /// instead of queueing every other query behind it. Default 5 s.
  std::chrono::milliseconds lock_timeout{5'000};

  /// Required for sqlite:// URLs (SQLite calls block).
  runtime::BlockingPool* blocking_pool = nullptr;

  /// List what would be applied without applying it.
  bool dry_run = false;
};

struct MigrationReport {
  std::vector<MigrationFile> applied;  ///< in order (would be applied, under dry_run)
  std::size_t already_applied = 0;
};

/// Lists the migration files of `folder` in version order. Files not ending
/// in .sql are ignored. Errors: DbError for a .sql file whose name is not
/// NNNN_name.sql, for two files with one version, or a missing folder.
std::vector<MigrationFile> list_migrations(const std::filesystem::path& folder);

/// Applies the migrations of `folder` not yet recorded in the
/// `schema_migrations` table, in version order, each in its own transaction
/// together with its row in `schema_migrations`. Connects through a null
/// pool (one connection, closed at the end), so nothing stays connected
/// afterwards. On PostgreSQL it sets lock_timeout first and holds an
/// advisory lock for the run, so concurrent runs apply each file once.
///
/// Errors: the first failing migration's SqlError (earlier ones stay
/// applied), ConnectError, UrlError, DbError from list_migrations().
/// Executor: runs on `executor`; reading the files blocks briefly.
/// Cancellation: cancelling stops between statements; the migration in
/// progress is rolled back.
///
/// NOTE: every file runs inside a transaction, so statements that refuse
/// one (CREATE INDEX CONCURRENTLY, VACUUM) cannot be used in migrations.
boost::asio::awaitable<MigrationReport> migrate(boost::asio::any_io_executor executor, std::string url,
                                                std::filesystem::path folder, MigrateOptions options = {});

}  // namespace sluice::db
