#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sluice/db/connection.hpp>

namespace sluice::db {

/// A parsed database URL.
///
/// - `postgresql://user:password@host:port/dbname?key=value&...` (also
///   `postgres://`). User, password and database name are percent-decoded.
///   Query parameters are libpq connection keywords (sslmode,
///   application_name, options, ...) passed through, except the ones sluice
///   reads itself (see DatabaseOptions). `host` may be a query parameter
///   instead (a Unix socket directory starting with '/').
/// - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (as
///   SQLAlchemy: three slashes, then the path), `sqlite://:memory:` and
///   `sqlite:///:memory:`. Query parameters: see DatabaseOptions.
struct DatabaseUrl {
  Backend backend = Backend::postgresql;
  std::string user;
  std::string password;
  std::string host;      ///< empty: libpq's default (local Unix socket)
  std::uint16_t port = 5432;
  std::string database;  ///< PostgreSQL database name, or SQLite file path / ":memory:"
  std::vector<std::pair<std::string, std::string>> parameters;

  /// Parses `url`. Errors: UrlError naming the part that is wrong; the
  /// message shows the URL with the password replaced.
  static DatabaseUrl parse(std::string_view url);

  /// Returns the value of query parameter `key`, or nullptr.
  const std::string* parameter(std::string_view key) const;

  /// The URL again, with the password replaced by "***".
  std::string redacted() const;
};

/// Returns `url` with any password replaced by "***": the userinfo password
/// and `password=` query parameters. Works on malformed URLs too and never
/// throws; every log line and error message that shows a URL goes through it.
std::string redact_url(std::string_view url);

}  // namespace sluice::db
