#pragma once

#include <optional>
#include <string_view>

#include <sluice/redis/reply.hpp>

struct redisReader;

namespace sluice::redis::detail {

/// Incremental RESP2 parser: bytes go in with `feed` in pieces of any size,
/// complete replies come out of `next` in order. Wraps hiredis's reader
/// (`redisReaderCreate`, `redisReaderFeed`, `redisReaderGetReply`), so it does
/// no I/O and can be tested on byte strings.
///
/// After a protocol error every call throws `Error` with
/// `Errc::protocol_error`; `reset` starts over with an empty buffer (used
/// when a connection is replaced).
class RespReader {
 public:
  RespReader();
  ~RespReader();
  RespReader(RespReader&& other) noexcept;
  RespReader& operator=(RespReader&& other) noexcept;
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  void feed(std::string_view bytes);
  /// Returns the next complete reply, or nullopt if more bytes are needed.
  std::optional<Reply> next();
  void reset();

 private:
  redisReader* reader_ = nullptr;
};

}  // namespace sluice::redis::detail
