#include <sluice/db/url.hpp>

#include <gtest/gtest.h>

#include <sluice/db/database.hpp>

namespace sluice::db {
namespace {

TEST(DatabaseUrl, ParsesPostgresqlUrl) {
  auto url = DatabaseUrl::parse("postgresql://bot:s%40cret@db.example:6543/bot_db?sslmode=require&application_name=x");

  EXPECT_EQ(url.backend, Backend::postgresql);
  EXPECT_EQ(url.user, "bot");
  EXPECT_EQ(url.password, "s@cret");
  EXPECT_EQ(url.host, "db.example");
  EXPECT_EQ(url.port, 6543);
  EXPECT_EQ(url.database, "bot_db");
  ASSERT_NE(url.parameter("sslmode"), nullptr);
  EXPECT_EQ(*url.parameter("sslmode"), "require");
}

TEST(DatabaseUrl, ParsesIpv6AndSocketHost) {
  auto ipv6 = DatabaseUrl::parse("postgres://u@[::1]:5433/d");
  EXPECT_EQ(ipv6.host, "::1");
  EXPECT_EQ(ipv6.port, 5433);

  auto socket = DatabaseUrl::parse("postgresql:///d?host=/var/run/postgresql");
  EXPECT_EQ(socket.host, "/var/run/postgresql");
  EXPECT_EQ(socket.port, 5432);
  EXPECT_TRUE(socket.parameters.empty());
}

TEST(DatabaseUrl, ParsesSqliteForms) {
  EXPECT_EQ(DatabaseUrl::parse("sqlite:///bot.db").database, "bot.db");
  EXPECT_EQ(DatabaseUrl::parse("sqlite:////var/lib/bot.db").database, "/var/lib/bot.db");
  EXPECT_EQ(DatabaseUrl::parse("sqlite://:memory:").database, ":memory:");
  EXPECT_EQ(DatabaseUrl::parse("sqlite:///:memory:").database, ":memory:");
  auto with_options = DatabaseUrl::parse("sqlite:///a.db?busy_timeout=100");
  EXPECT_EQ(with_options.backend, Backend::sqlite);
  EXPECT_EQ(*with_options.parameter("busy_timeout"), "100");
}

void expect_url_error(const std::string& url, const std::string& fragment) {
  try {
    DatabaseUrl::parse(url);
    ADD_FAILURE() << "no error for " << url;
  } catch (const UrlError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
    EXPECT_EQ(message.find("hunter2"), std::string::npos) << "password leaked: " << message;
  }
}

TEST(DatabaseUrl, BadUrlsNameTheProblem) {
  expect_url_error("localhost/db", "missing scheme");
  expect_url_error("mysql://u:hunter2@h/db", "unsupported scheme `mysql`");
  expect_url_error("postgresql://u:hunter2@h:99999/db", "port `99999`");
  expect_url_error("postgresql://u:hunter2@h:abc/db", "port `abc`");
  expect_url_error("postgresql://u:hunter2@[::1/db", "missing `]`");
  expect_url_error("postgresql://u:hunter2@h/d%zz", "percent-encoding");
  expect_url_error("postgresql://u:hunter2@h/d?flag", "not key=value");
  expect_url_error("sqlite://relative.db", "sqlite:///relative/path.db");
}

TEST(DatabaseUrl, SqliteEmptyPathIsRejected) {
  expect_url_error("sqlite://", "the file path is empty");
  expect_url_error("sqlite://", "sqlite:///relative/path.db");
  expect_url_error("sqlite:///", "the file path is empty");
  expect_url_error("sqlite://?busy_timeout=100", "the file path is empty");
  expect_url_error("sqlite:///?busy_timeout=100", "the file path is empty");
}

TEST(RedactUrl, HidesPasswords) {
  EXPECT_EQ(redact_url("postgresql://bot:hunter2@db:5432/x"), "postgresql://bot:***@db:5432/x");
  EXPECT_EQ(redact_url("postgresql://bot@db/x?password=hunter2&sslmode=require"),
            "postgresql://bot@db/x?password=***&sslmode=require");
  EXPECT_EQ(redact_url("host=db user=bot password=hunter2 dbname=x"), "host=db user=bot password=*** dbname=x");
  EXPECT_EQ(redact_url("postgresql://bot:p%40ss:word@db/x"), "postgresql://bot:***@db/x");
  EXPECT_EQ(redact_url("not a url at all"), "not a url at all");
  EXPECT_EQ(redact_url("sqlite:///bot.db"), "sqlite:///bot.db");
}

TEST(DatabaseUrl, RedactedDropsPassword) {
  auto url = DatabaseUrl::parse("postgresql://bot:hunter2@db:5432/x?password=hunter2");
  const auto text = url.redacted();

  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_EQ(text, "postgresql://bot:***@db:5432/x");
}

TEST(Database, StartsWithSelect) {
  EXPECT_TRUE(Database::starts_with_select("SELECT 1"));
  EXPECT_TRUE(Database::starts_with_select("  select * from t"));
  EXPECT_TRUE(Database::starts_with_select("(SELECT 1)"));
  EXPECT_FALSE(Database::starts_with_select("INSERT INTO t VALUES (1) RETURNING id"));
  EXPECT_FALSE(Database::starts_with_select("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"));
  EXPECT_FALSE(Database::starts_with_select("selected"));
}

}  // namespace
}  // namespace sluice::db
