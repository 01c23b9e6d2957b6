#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace sluice::redis {

/// Client-side failures of a Redis request. A Redis error reply (`-ERR ...`)
/// is not one of these: `Client::execute` returns it as a `Reply` of kind
/// `ReplyKind::error`, and the typed wrappers throw `ServerError` for it.
enum class Errc {
  /// The connection died after the request was written. The server may have
  /// executed it; the client never re-sends it.
  connection_lost = 1,
  /// No connection came up within `connect_timeout`; the message carries the
  /// last connect error. The request was not sent.
  not_connected,
  /// The request's deadline passed. If it was already written, its reply is
  /// still read and dropped, so the server may have executed it.
  timeout,
  /// The client or subscriber was closed; the request was not sent.
  closed,
  /// The server sent bytes that are not valid RESP2; the connection is dropped.
  protocol_error,
  /// A typed wrapper got a reply of a kind it cannot convert (for example an
  /// array where `get` expects a string).
  unexpected_reply,
  /// The URL given in the options cannot be parsed or uses an unsupported
  /// scheme.
  invalid_url,
  /// AUTH, SELECT or CLIENT SETNAME failed while opening a connection.
  handshake_failed,
};

/// The error category named "sluice.redis".
const std::error_category& error_category() noexcept;

std::error_code make_error_code(Errc code) noexcept;

/// Exception for every `Errc`: `code()` compares equal to the `Errc` value,
/// and `what()` names the command, the server address and the cause. It never
/// contains a password.
class Error : public std::system_error {
 public:
  Error(Errc code, std::string message);

  Errc errc() const noexcept { return static_cast<Errc>(code().value()); }
  /// The message given at construction, without the category's text.
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

/// An error reply from Redis, thrown by the typed wrappers (`get`, `set`, ...)
/// and by `transaction`. `execute` returns error replies instead of throwing.
class ServerError : public std::runtime_error {
 public:
  /// `command` is the command name, `message` the full error text from the
  /// server (for example "WRONGTYPE Operation against a key ...").
  ServerError(std::string_view command, std::string_view message);

  /// The first word of the error text, which Redis uses as the error code:
  /// "ERR", "WRONGTYPE", "NOSCRIPT", "EXECABORT", ...
  const std::string& error_code() const noexcept { return error_code_; }
  /// The full error text as the server sent it.
  const std::string& server_message() const noexcept { return server_message_; }

 private:
  std::string error_code_;
  std::string server_message_;
};

}  // namespace sluice::redis

template <>
struct std::is_error_code_enum<sluice::redis::Errc> : std::true_type {};
