#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include <sluice/http/message.hpp>

namespace sluice::http::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Upper bound of every wait in a test; reaching it means the test hangs.
inline constexpr std::chrono::seconds kMaxWait{120};

/// Runs `body` (a function object returning awaitable<void>) on a fresh
/// io_context until the context has no work left. Fails the test if the body
/// throws or if the loop still has work after `max_wait` (something leaked).
template <class Body>
void run_test(Body body, std::chrono::seconds max_wait = kMaxWait) {
  asio::io_context context;
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(context, std::move(body), [&](std::exception_ptr error) {
    failure = error;
    done = true;
    if (failure) {
      context.stop();
    }
  });
  context.run_for(max_wait);
  ASSERT_TRUE(done) << "test body did not finish within " << max_wait.count() << " s";
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (std::exception const& error) {
      FAIL() << "test body threw: " << error.what();
    }
  }
  EXPECT_TRUE(context.stopped()) << "the loop still had work " << max_wait.count() << " s after the start";
}

inline asio::awaitable<tcp::socket> connect_to(std::uint16_t port) {
  tcp::socket socket(co_await asio::this_coro::executor);
  tcp::endpoint const endpoint{asio::ip::make_address("127.0.0.1"), port};
  co_await socket.async_connect(endpoint, asio::use_awaitable);
  co_return socket;
}

inline asio::awaitable<void> write_text(tcp::socket& socket, std::string text) {
  co_await asio::async_write(socket, asio::buffer(text), asio::use_awaitable);
}

/// Reads one response; returns the error (empty on success) and the response.
inline asio::awaitable<std::pair<error_code, Response>> read_response(tcp::socket& socket,
                                                                      beast::flat_buffer& buffer) {
  Response response;
  auto [error, size] = co_await beast::http::async_read(socket, buffer, response, use_tuple);
  co_return std::pair{error, std::move(response)};
}

/// Result of reading until the peer closes.
struct ReadUntilClosed {
  error_code error;  // eof, connection_reset, or timed_out when `limit` passed
  std::string data;
};

/// Reads everything the peer sends until it closes, an error, or `limit`.
inline asio::awaitable<ReadUntilClosed> read_until_closed(tcp::socket& socket, std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  ReadUntilClosed result;
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(limit);
  char chunk[4096];
  for (;;) {
    auto read = socket.async_read_some(asio::buffer(chunk), use_tuple);
    auto wait = timer.async_wait(use_tuple);
    auto outcome = co_await (std::move(read) || std::move(wait));
    if (outcome.index() == 1) {
      result.error = asio::error::timed_out;
      co_return result;
    }
    auto [error, size] = std::get<0>(outcome);
    result.data.append(chunk, size);
    if (error) {
      result.error = error;
      co_return result;
    }
  }
}

inline std::string simple_get(std::string const& target, bool keep_alive = true) {
  std::string text = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!keep_alive) {
    text += "Connection: close\r\n";
  }
  return text + "\r\n";
}

}  // namespace sluice::http::test
