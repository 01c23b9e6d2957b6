#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::redis {

/// The RESP2 reply types. A simple string (`+OK`) and a bulk string
/// (`$2\r\nOK`) carry the same text but stay distinct; an error (`-ERR ...`)
/// is never a string.
enum class ReplyKind : std::uint8_t {
  nil,
  integer,
  simple_string,
  bulk_string,
  error,
  array,
};

/// Returns the lower-case name of `kind` ("nil", "integer", ...).
std::string_view to_string(ReplyKind kind) noexcept;

/// One Redis reply, owned by value. Arrays hold their elements, which may be
/// arrays again. A default-constructed Reply is nil.
///
/// The `as_*` accessors throw `Error` with `Errc::unexpected_reply` when the
/// kind does not match, except that an error reply makes them throw
/// `ServerError` instead, so a caller sees the server's message.
class Reply {
 public:
  Reply() = default;

  static Reply make_nil() { return Reply(); }
  static Reply make_integer(std::int64_t value);
  static Reply make_simple_string(std::string text);
  static Reply make_bulk_string(std::string text);
  static Reply make_error(std::string message);
  static Reply make_array(std::vector<Reply> elements);

  ReplyKind kind() const noexcept { return kind_; }
  bool is_nil() const noexcept { return kind_ == ReplyKind::nil; }
  bool is_integer() const noexcept { return kind_ == ReplyKind::integer; }
  /// True for simple and bulk strings.
  bool is_string() const noexcept {
    return kind_ == ReplyKind::simple_string || kind_ == ReplyKind::bulk_string;
  }
  bool is_error() const noexcept { return kind_ == ReplyKind::error; }
  bool is_array() const noexcept { return kind_ == ReplyKind::array; }

  std::int64_t as_integer() const;
  /// The text of a simple or bulk string.
  const std::string& as_string() const;
  /// Moves the text of a simple or bulk string out of the reply.
  std::string take_string();
  /// The text of a string, or nullopt for nil.
  std::optional<std::string> as_optional_string() const;
  const std::vector<Reply>& as_array() const;
  std::vector<Reply>& as_array();

  /// Full text of an error reply; empty for other kinds.
  std::string_view error_message() const noexcept;
  /// First word of an error reply ("ERR", "WRONGTYPE", "NOSCRIPT", ...);
  /// empty for other kinds.
  std::string_view error_code() const noexcept;
  /// Throws `ServerError` naming `command` if this is an error reply.
  void throw_if_error(std::string_view command) const;

  /// A short human-readable form for logs and test output, for example
  /// `["a", 1, nil]`, `+OK` or `(error) ERR unknown command`.
  std::string to_debug_string() const;

  friend bool operator==(const Reply& a, const Reply& b);

 private:
  ReplyKind kind_ = ReplyKind::nil;
  std::int64_t integer_ = 0;
  std::string text_;
  std::vector<Reply> elements_;
};

}  // namespace sluice::redis
