#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::redis {

/// Where and how to connect, as parsed from a `redis://` URL.
struct ServerAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  /// ACL user name for `AUTH user password`; empty sends `AUTH password`.
  std::string username;
  /// Empty means no AUTH.
  std::string password;
  /// Database index sent with SELECT when it is not 0.
  int database = 0;

  /// "host:port", with IPv6 hosts in brackets. Never contains the password.
  std::string endpoint() const;
};

/// Parses `redis://[[user]:password@]host[:port][/db]`.
///
/// User and password are percent-decoded. The port defaults to 6379 and the
/// database to 0. Throws `Error` with `Errc::invalid_url` for anything else,
/// including `rediss://` (TLS is not supported yet) and `unix://`; the
/// message shows the URL with its password replaced by "***".
ServerAddress parse_url(std::string_view url);

/// Returns `url` with the user information (`user:password@`) replaced by
/// "***@", for logs and error messages. Works on malformed URLs too.
std::string redact_url(std::string_view url);

}  // namespace sluice::redis
