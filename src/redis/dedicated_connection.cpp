#include "redis/dedicated_connection.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <sluice/redis/command.hpp>
#include <sluice/redis/error.hpp>

#include "redis/deadline.hpp"

namespace sluice::redis::detail {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// Read size for dedicated connections; they carry handshakes, blocking
// commands and pub/sub messages, so a small buffer is enough.
constexpr std::size_t kDedicatedReadBuffer = 16 * 1024;

}  // namespace

Clock::duration reconnect_delay(std::chrono::milliseconds minimum, std::chrono::milliseconds maximum,
                                std::size_t failures, std::minstd_rand& random) {
  std::chrono::milliseconds delay = minimum;
  for (std::size_t i = 0; i < failures && delay < maximum; ++i) {
    delay *= 2;
  }
  delay = std::min(delay, maximum);
  std::uniform_int_distribution<std::int64_t> jitter(delay.count() / 2, delay.count());
  return std::chrono::milliseconds(jitter(random));
}

void throw_io_error(std::string_view operation, const boost::system::error_code& ec) {
  if (ec == asio::error::operation_aborted) {
    throw boost::system::system_error(ec);
  }
  if (ec == asio::error::eof) {
    throw Error(Errc::connection_lost, "the server closed the connection");
  }
  throw Error(Errc::connection_lost, std::string(operation) + " failed: " + ec.message());
}

std::string encode_handshake(const Handshake& handshake, std::vector<std::string>& labels) {
  std::string payload;
  const ServerAddress& address = handshake.address;
  if (!address.password.empty()) {
    Command auth("AUTH");
    if (!address.username.empty()) {
      auth.arg(address.username);
    }
    auth.arg(address.password);
    auth.encode_to(payload);
    labels.push_back(address.username.empty() ? "AUTH" : "AUTH as user " + address.username);
  }
  if (address.database != 0) {
    Command("SELECT", address.database).encode_to(payload);
    labels.push_back("SELECT " + std::to_string(address.database));
  }
  if (!handshake.client_name.empty()) {
    Command("CLIENT", "SETNAME", handshake.client_name).encode_to(payload);
    labels.push_back("CLIENT SETNAME");
  } else {
    Command("PING").encode_to(payload);
    labels.push_back("PING");
  }
  return payload;
}

void check_handshake_replies(const Handshake& handshake, const std::vector<std::string>& labels,
                             const std::vector<Reply>& replies) {
  for (std::size_t i = 0; i < replies.size() && i < labels.size(); ++i) {
    if (replies[i].is_error()) {
      throw Error(Errc::handshake_failed, "redis handshake with " + handshake.address.endpoint() + " failed at " +
                                              labels[i] + ": " + std::string(replies[i].error_message()));
    }
  }
}

DedicatedConnection::DedicatedConnection(const asio::any_io_executor& executor) : socket_(executor) {}

void DedicatedConnection::close() noexcept {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

asio::awaitable<void> DedicatedConnection::open(const Handshake& handshake, Clock::time_point deadline) {
  close();
  reader_.reset();
  try {
    asio::awaitable<void> steps = connect_and_handshake(handshake);
    co_await with_deadline(std::move(steps), deadline, "connecting to " + handshake.address.endpoint());
  } catch (...) {
    close();
    throw;
  }
}

asio::awaitable<void> DedicatedConnection::connect_and_handshake(const Handshake& handshake) {
  const ServerAddress& address = handshake.address;
  auto executor = co_await asio::this_coro::executor;

  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code parse_error;
  asio::ip::address ip = asio::ip::make_address(address.host, parse_error);
  if (!parse_error) {
    endpoints.emplace_back(ip, address.port);
  } else {
    // NOTE: Asio resolves on a background thread that cannot be
    // interrupted, so a hanging DNS server delays the connect deadline.
    tcp::resolver resolver(executor);
    auto results = co_await resolver.async_resolve(address.host, std::to_string(address.port), asio::use_awaitable);
    for (const auto& entry : results) {
      endpoints.push_back(entry.endpoint());
    }
  }

  boost::system::error_code ec;
  co_await asio::async_connect(socket_, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    throw Error(Errc::not_connected, "connecting to " + address.endpoint() + " failed: " + ec.message());
  }
  socket_.set_option(tcp::no_delay(true), ec);

  std::vector<std::string> labels;
  std::string payload = encode_handshake(handshake, labels);
  std::vector<Reply> replies = co_await write_and_read(payload, labels.size());
  check_handshake_replies(handshake, labels, replies);
}

asio::awaitable<std::vector<Reply>> DedicatedConnection::exchange(std::string_view payload, std::size_t replies,
                                                                  Clock::time_point deadline, std::string what) {
  try {
    asio::awaitable<std::vector<Reply>> steps = write_and_read(payload, replies);
    co_return co_await with_deadline(std::move(steps), deadline, std::move(what));
  } catch (...) {
    close();
    throw;
  }
}

asio::awaitable<std::vector<Reply>> DedicatedConnection::write_and_read(std::string_view payload,
                                                                         std::size_t replies) {
  co_await write(payload);
  std::vector<Reply> out;
  out.reserve(replies);
  while (out.size() < replies) {
    out.push_back(co_await read_reply());
  }
  co_return out;
}

bool DedicatedConnection::idle_and_alive() noexcept {
  if (!socket_.is_open()) {
    return false;
  }
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  if (ec) {
    return false;
  }
  char byte = 0;
  std::size_t n = socket_.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
  bool alive = ec == asio::error::would_block && n == 0;
  socket_.non_blocking(false, ec);
  return alive && !ec;
}

asio::awaitable<void> DedicatedConnection::write(std::string_view payload) {
  boost::system::error_code ec;
  co_await asio::async_write(socket_, asio::buffer(payload.data(), payload.size()),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    throw_io_error("write", ec);
  }
}

asio::awaitable<Reply> DedicatedConnection::read_reply() {
  for (;;) {
    if (auto reply = reader_.next()) {
      co_return std::move(*reply);
    }
    if (buffer_.size() < kDedicatedReadBuffer) {
      buffer_.resize(kDedicatedReadBuffer);
    }
    boost::system::error_code ec;
    std::size_t n = co_await socket_.async_read_some(asio::buffer(buffer_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      throw_io_error("read", ec);
    }
    reader_.feed(std::string_view(buffer_.data(), n));
  }
}

}  // namespace sluice::redis::detail
