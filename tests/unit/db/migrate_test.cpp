#include <sluice/db/migrate.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sluice/db/database.hpp>
#include <sluice/runtime/blocking_pool.hpp>

#include "unit/db/coro_test_support.hpp"

namespace sluice::db::testing {
namespace {

namespace asio = boost::asio;

// A temporary folder of migration files.
class MigrationDir {
 public:
  explicit MigrationDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / ("sluice-migrate-" + std::to_string(::getpid()) + "-" + name)) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_ / "sql");
  }
  ~MigrationDir() { std::filesystem::remove_all(path_); }

  void write(const std::string& file, const std::string& text) const { std::ofstream(path_ / "sql" / file) << text; }
  std::filesystem::path folder() const { return path_ / "sql"; }
  std::string url() const { return "sqlite:///" + (path_ / "db.sqlite").string(); }

 private:
  std::filesystem::path path_;
};

TEST(Migrations, ListedInVersionOrder) {
  MigrationDir dir("order");
  dir.write("0010_ten.sql", "");
  dir.write("0002_two.sql", "");
  dir.write("README.md", "ignored");
  auto files = list_migrations(dir.folder());

  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].version, 2);
  EXPECT_EQ(files[0].name, "0002_two.sql");
  EXPECT_EQ(files[1].version, 10);
}

TEST(Migrations, BadNamesAndDuplicatesRejected) {
  MigrationDir bad("bad");
  bad.write("create_users.sql", "");
  EXPECT_THROW(list_migrations(bad.folder()), DbError);

  MigrationDir duplicate("duplicate");
  duplicate.write("0001_a.sql", "");
  duplicate.write("001_b.sql", "");
  try {
    list_migrations(duplicate.folder());
    ADD_FAILURE() << "duplicate versions accepted";
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.what()).find("same version 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(list_migrations("/nonexistent/sluice/migrations"), DbError);
}

TEST(Migrations, SqliteAppliesEachOnce) {
  MigrationDir dir("sqlite");
  dir.write("0001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n"
                              "INSERT INTO users (name) VALUES ('first');");
  dir.write("0002_email.sql", "ALTER TABLE users ADD COLUMN email TEXT;");
  asio::io_context ioc;
  runtime::BlockingPool blocking(2);
  run_on(ioc, [&]() -> asio::awaitable<void> {
    MigrateOptions options{.blocking_pool = &blocking};
    auto first = co_await migrate(ioc.get_executor(), dir.url(), dir.folder(), options);
    auto second = co_await migrate(ioc.get_executor(), dir.url(), dir.folder(), options);
    dir.write("0003_broken.sql", "CREATE TABLE t (a INTEGER); THIS IS NOT SQL;");
    bool failed = false;
    try {
      co_await migrate(ioc.get_executor(), dir.url(), dir.folder(), options);
    } catch (const SqlError& e) {
      failed = std::string(e.what()).find("0003_broken.sql") != std::string::npos;
    }

    EXPECT_EQ(first.applied.size(), 2u);
    EXPECT_EQ(second.applied.size(), 0u);
    EXPECT_EQ(second.already_applied, 2u);
    EXPECT_TRUE(failed);
    DatabaseOptions db_options;
    db_options.sqlite.blocking_pool = &blocking;
    Database db(ioc.get_executor(), dir.url(), db_options);
    auto versions = co_await db.query("SELECT version FROM schema_migrations ORDER BY version");
    auto tables = co_await db.query("SELECT count(*) FROM sqlite_master WHERE name = 't'");
    EXPECT_EQ(versions.size(), 2u) << "the failed migration is not recorded";
    EXPECT_EQ(tables.at(0).get<int>(0), 0) << "the failed migration was rolled back";
    co_await db.close();
  });
}

}  // namespace
}  // namespace sluice::db::testing
