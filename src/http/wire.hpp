#pragma once

// Reads and writes of whole HTTP messages on a plain TCP socket in
// non-blocking mode, shared by the client and the server.
//
// The writer sends at once what the socket buffer takes. The reader waits
// for the first chunk of a message and then reads at once what has arrived.
// An asynchronous Beast read goes through the executor's queue once per
// chunk, behind every handler already queued. A 22 KiB getUpdates reply
// that arrived with a hundred sendMessage replies took about 1 ms to read
// that way, and 0.1 ms here.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

namespace sluice::http::detail {

inline constexpr std::size_t kHeaderReserve = 256;
// Largest body read_message makes room for at once. A larger one grows the
// buffer as it arrives.
inline constexpr std::size_t kMaxReadReserve = 1024 * 1024;

inline void append_version(std::string& head, unsigned version) {
  head += "HTTP/";
  head += static_cast<char>('0' + version / 10);
  head += '.';
  head += static_cast<char>('0' + version % 10);
}

// Returns the bytes Beast's serializer writes before the body of `message`:
// the start line, one "Name: value" line per field in order, and an empty
// line. Walking the serializer's buffer sequence costs more than this copy.
template <bool IsRequest, class Body>
std::string serialize_head(boost::beast::http::message<IsRequest, Body> const& message) {
  std::string head;
  head.reserve(kHeaderReserve);
  if constexpr (IsRequest) {
    auto const method = message.method_string();
    auto const target = message.target();
    head.append(method.data(), method.size());
    head += ' ';
    head.append(target.data(), target.size());
    head += ' ';
    append_version(head, message.version());
  } else {
    auto const code = message.result_int();
    auto const reason = message.reason();
    append_version(head, message.version());
    head += ' ';
    head += static_cast<char>('0' + code / 100);
    head += static_cast<char>('0' + (code / 10) % 10);
    head += static_cast<char>('0' + code % 10);
    head += ' ';
    head.append(reason.data(), reason.size());
  }
  head += "\r\n";
  for (auto const& field : message) {
    auto const name = field.name_string();
    auto const value = field.value();
    head.append(name.data(), name.size());
    head += ": ";
    head.append(value.data(), value.size());
    head += "\r\n";
  }
  head += "\r\n";
  return head;
}

inline bool would_block(boost::system::error_code const& error) {
  return error == boost::asio::error::would_block || error == boost::asio::error::try_again;
}

struct Transferred {
  boost::system::error_code error;
  std::size_t bytes = 0;
};

// Writes a message with a Content-Length body (not chunked). `socket` must
// be in non-blocking mode: what the socket buffer takes is sent at once, and
// only the rest waits for an asynchronous write.
template <bool IsRequest>
boost::asio::awaitable<Transferred> write_message(
    boost::asio::ip::tcp::socket& socket,
    boost::beast::http::message<IsRequest, boost::beast::http::string_body> const& message) {
  auto const head = serialize_head(message);
  std::array<boost::asio::const_buffer, 2> const buffers{boost::asio::buffer(head),
                                                          boost::asio::buffer(message.body())};
  Transferred outcome;
  outcome.bytes = boost::asio::write(socket, buffers, outcome.error);
  if (!would_block(outcome.error)) {
    co_return outcome;
  }
  boost::beast::buffers_suffix<std::array<boost::asio::const_buffer, 2>> rest(buffers);
  rest.consume(outcome.bytes);
  auto [error, written] =
      co_await boost::asio::async_write(socket, rest, boost::asio::as_tuple(boost::asio::use_awaitable));
  outcome.error = error;
  outcome.bytes += written;
  co_return outcome;
}

// Reads one message into `parser`, starting with the bytes already in
// `buffer`. `socket` must be in non-blocking mode. Each wait is an
// asynchronous read of one chunk, because an async_wait makes Asio
// re-register the socket with epoll_ctl every time.
template <bool IsRequest>
boost::asio::awaitable<boost::system::error_code> read_message(
    boost::asio::ip::tcp::socket& socket, boost::beast::flat_buffer& buffer,
    boost::beast::http::parser<IsRequest, boost::beast::http::string_body>& parser) {
  while (true) {
    auto [error, bytes] = co_await boost::beast::http::async_read_some(
        socket, buffer, parser, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (error || parser.is_done()) {
      co_return error;
    }
    // Room for the rest of the body, so that one read takes what arrived
    // instead of one per doubling of the buffer. The parser has already
    // checked the length against its body limit.
    if (auto const remaining = parser.content_length_remaining()) {
      auto const needed = buffer.size() + static_cast<std::size_t>(*remaining);
      if (needed <= kMaxReadReserve && buffer.capacity() < needed) {
        buffer.reserve(needed);
      }
    }
    boost::system::error_code rest_error;
    boost::beast::http::read(socket, buffer, parser, rest_error);
    if (!would_block(rest_error)) {
      co_return rest_error;
    }
  }
}

}  // namespace sluice::http::detail
