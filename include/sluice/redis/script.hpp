#pragma once

#include <string>
#include <string_view>

namespace sluice::redis {

/// A Lua script for `Client::eval`, which sends `EVALSHA` with the script's
/// SHA-1 digest and falls back to `EVAL` (which also caches the script on
/// the server) when the server answers NOSCRIPT, for example after a restart
/// or `SCRIPT FLUSH`.
///
/// Immutable after construction; create scripts once (for example as
/// members of the object that uses them) and share them freely.
class Script {
 public:
  explicit Script(std::string source);

  const std::string& source() const noexcept { return source_; }
  /// Lower-case hex SHA-1 of the source, as `SCRIPT LOAD` returns it.
  const std::string& sha1() const noexcept { return sha1_; }

 private:
  std::string source_;
  std::string sha1_;
};

}  // namespace sluice::redis
