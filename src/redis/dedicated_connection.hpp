#pragma once

#include <chrono>
#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <sluice/redis/reply.hpp>
#include <sluice/redis/url.hpp>

#include "redis/resp_reader.hpp"

namespace sluice::redis::detail {

using Clock = std::chrono::steady_clock;

/// What every new connection sends before it is used: AUTH when the URL has
/// a password, SELECT when the database is not 0, and CLIENT SETNAME when
/// the name is not empty (PING otherwise, so that a server that accepts TCP
/// but never answers is caught by the connect deadline).
struct Handshake {
  ServerAddress address;
  std::string client_name;
};

/// A socket with its reply parser, used alone by one coroutine at a time:
/// for the handshake of every connection, for blocking commands and for
/// pub/sub. Not thread-safe.
class DedicatedConnection {
 public:
  explicit DedicatedConnection(const boost::asio::any_io_executor& executor);

  /// Resolves, connects and runs the handshake, all before `deadline`.
  /// Errors: Error with Errc::timeout, Errc::not_connected (connect
  /// failed), Errc::handshake_failed or Errc::connection_lost; messages
  /// name the endpoint but never the password. A failed DNS lookup throws
  /// boost::system::system_error. Cancellation: throws operation_aborted.
  boost::asio::awaitable<void> open(const Handshake& handshake, Clock::time_point deadline);

  /// Writes `payload` (encoded commands) and reads `replies` replies, all
  /// before `deadline`; a timeout message starts with `what`. On any error
  /// or cancellation the connection is closed, because replies may still be
  /// on their way.
  boost::asio::awaitable<std::vector<Reply>> exchange(std::string_view payload, std::size_t replies,
                                                      Clock::time_point deadline, std::string what);

  /// Checks without a round trip that the idle connection is still usable:
  /// no EOF, no error and no unexpected bytes waiting on the socket.
  bool idle_and_alive() noexcept;

  /// Writes `payload` with no deadline.
  boost::asio::awaitable<void> write(std::string_view payload);
  /// Reads the next reply with no deadline (the caller races it).
  boost::asio::awaitable<Reply> read_reply();

  bool is_open() const noexcept { return socket_.is_open(); }
  void close() noexcept;
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
  RespReader& reader() noexcept { return reader_; }

 private:
  boost::asio::awaitable<void> connect_and_handshake(const Handshake& handshake);
  boost::asio::awaitable<std::vector<Reply>> write_and_read(std::string_view payload, std::size_t replies);

  boost::asio::ip::tcp::socket socket_;
  RespReader reader_;
  std::vector<char> buffer_;
};

/// Throws for a failed socket read or write: system_error for
/// operation_aborted (cancellation), otherwise Error(Errc::connection_lost)
/// with a message that names `operation` ("read", "write").
[[noreturn]] void throw_io_error(std::string_view operation, const boost::system::error_code& ec);

/// Returns the delay before reconnect attempt `failures + 1`:
/// `minimum * 2^failures`, capped at `maximum`, then drawn uniformly from
/// [delay/2, delay] so that many clients do not reconnect in step.
Clock::duration reconnect_delay(std::chrono::milliseconds minimum, std::chrono::milliseconds maximum,
                                std::size_t failures, std::minstd_rand& random);

/// Encodes the handshake commands and returns them with a label for each
/// reply (for error messages; the AUTH label never shows the password).
std::string encode_handshake(const Handshake& handshake, std::vector<std::string>& labels);

/// Throws Error(Errc::handshake_failed) if one of `replies` is an error.
void check_handshake_replies(const Handshake& handshake, const std::vector<std::string>& labels,
                             const std::vector<Reply>& replies);

}  // namespace sluice::redis::detail
