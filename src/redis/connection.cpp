#include <algorithm>
#include <exception>
#include <string>
#include <utility>

#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <sluice/redis/error.hpp>

#include "redis/client_impl.hpp"
#include "redis/deadline.hpp"

namespace sluice::redis::detail {
namespace {

namespace asio = boost::asio;

// One read takes up to this many bytes of replies: hundreds of small
// replies per system call under load, and little memory per connection.
constexpr std::size_t kReadBufferSize = 64 * 1024;
// A write buffer grown past this by a large pipeline is released after the
// write instead of being kept for the life of the connection.
constexpr std::size_t kWriteBufferKeep = 1024 * 1024;
constexpr std::string_view kPing = "*1\r\n$4\r\nPING\r\n";

std::int64_t to_ms(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

}  // namespace

void RequestWaiter::detach() noexcept {
  if (request != nullptr) {
    request->waiter = nullptr;
    request = nullptr;
  }
}

void RequestWaiter::complete(Outcome result) noexcept {
  outcome = result;
  request = nullptr;
  timer.cancel();
}

Connection::Connection(ClientImpl& client, std::size_t index)
    : client_(client),
      index_(index),
      label_("conn=" + std::to_string(index) + " endpoint=" + client.handshake().address.endpoint()),
      stream_(client.executor()),
      write_signal_(client.executor(), Clock::time_point::max()),
      sleep_timer_(client.executor()) {}

Connection::~Connection() {
  for (Request& request : requests_) {
    if (request.waiter != nullptr) {
      RequestWaiter& waiter = *request.waiter;
      waiter.failure_code = Errc::closed;
      waiter.failure = "redis " + std::string(waiter.name) + ": the client was destroyed";
      waiter.complete(Outcome::failed);
    }
  }
}

bool Connection::has_room_for(std::size_t commands) const noexcept {
  return pending_commands_ == 0 || pending_commands_ + commands <= client_.options().max_pending;
}

void Connection::enqueue(RequestWaiter& waiter) {
  requests_.push_back(Request{.waiter = &waiter, .commands = waiter.commands});
  waiter.request = &requests_.back();
  if (waiter.commands > 1) {
    waiter.replies.reserve(waiter.commands);
  }
  pending_commands_ += waiter.commands;
  unwritten_commands_ += waiter.commands;
  if (writer_waiting_) {
    writer_waiting_ = false;
    write_signal_.cancel();
  }
}

void Connection::enqueue_keepalive() {
  requests_.push_back(Request{.waiter = nullptr, .commands = 1, .keepalive = true});
  ++pending_commands_;
  ++unwritten_commands_;
  if (writer_waiting_) {
    writer_waiting_ = false;
    write_signal_.cancel();
  }
}

void Connection::stop() noexcept {
  stream_.close();
  sleep_timer_.cancel();
  write_signal_.cancel();
}

asio::awaitable<void> Connection::run() {
  std::size_t failures = 0;
  while (!client_.stopping()) {
    std::string error;
    try {
      co_await stream_.open(client_.handshake(), Clock::now() + client_.options().connect_timeout);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) {
        error = "unknown error";
      }
    }
    if (client_.stopping()) {
      break;
    }
    if (!error.empty()) {
      client_.on_connect_failed(*this, error);
      const ClientOptions& options = client_.options();
      sleep_timer_.expires_after(
          reconnect_delay(options.reconnect_backoff_min, options.reconnect_backoff_max, failures, client_.random()));
      ++failures;
      co_await sleep_timer_.async_wait(asio::use_awaitable);
      continue;
    }

    failures = 0;
    up_ = true;
    Clock::time_point now = Clock::now();
    last_read_ = now;
    last_write_ = now;
    busy_since_ = now;
    read_buffer_.resize(kReadBufferSize);
    client_.on_connection_up(*this);
    ever_up_ = true;

    std::string reason;
    try {
      co_await session();
    } catch (const std::exception& e) {
      reason = e.what();
    }
    go_down(reason);
  }
  go_down("client closed");
}

asio::awaitable<void> Connection::session() {
  asio::awaitable<void> reader = read_loop();
  asio::awaitable<void> writer = write_loop();
  asio::awaitable<void> health = health_loop();
  co_await run_until_first_exits(std::move(reader), std::move(writer), std::move(health));
}

asio::awaitable<void> Connection::read_loop() {
  RespReader& reader = stream_.reader();
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = co_await stream_.socket().async_read_some(asio::buffer(read_buffer_),
                                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      throw_io_error("read", ec);
    }
    last_read_ = Clock::now();
    reader.feed(std::string_view(read_buffer_.data(), n));
    while (auto reply = reader.next()) {
      on_reply(std::move(*reply));
    }
  }
}

void Connection::on_reply(Reply reply) {
  pop_finished_front();
  if (written_ == 0) {
    throw Error(Errc::protocol_error, "redis " + label_ + ": reply without a request: " + reply.to_debug_string());
  }

  ClientStats& stats = client_.counters();
  ++stats.replies_received;
  if (reply.is_error()) {
    ++stats.error_replies;
  }
  --in_flight_commands_;
  --pending_commands_;

  Request& request = requests_.front();
  ++request.received;
  if (RequestWaiter* waiter = request.waiter) {
    if (waiter->commands == 1) {
      waiter->reply = std::move(reply);
    } else {
      waiter->replies.push_back(std::move(reply));
    }
  }
  if (request.received < request.commands) {
    return;
  }

  if (request.waiter != nullptr) {
    request.waiter->complete(Outcome::replied);
  }
  requests_.pop_front();
  --written_;
  pop_finished_front();
  client_.on_capacity_freed();
}

void Connection::pop_finished_front() noexcept {
  while (written_ > 0 && requests_.front().skipped) {
    requests_.pop_front();
    --written_;
  }
}

asio::awaitable<void> Connection::write_loop() {
  ClientStats& stats = client_.counters();
  for (;;) {
    if (written_ == requests_.size()) {
      writer_waiting_ = true;
      boost::system::error_code ec;
      co_await write_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      writer_waiting_ = false;
      continue;
    }

    // Everything queued since the last write goes out in one write.
    write_buffer_.clear();
    std::size_t commands = 0;
    std::size_t skipped_commands = 0;
    for (std::size_t i = written_; i < requests_.size(); ++i) {
      Request& request = requests_[i];
      if (request.keepalive) {
        write_buffer_ += kPing;
        ++commands;
        ++stats.keepalive_pings;
      } else if (request.waiter == nullptr) {
        request.skipped = true;
        skipped_commands += request.commands;
      } else {
        if (request.waiter->command != nullptr) {
          request.waiter->command->encode_to(write_buffer_);
        } else {
          write_buffer_ += request.waiter->payload;
        }
        request.waiter->written = true;
        commands += request.commands;
        stats.commands_sent += request.commands;
      }
    }
    written_ = requests_.size();
    unwritten_commands_ -= commands + skipped_commands;
    pending_commands_ -= skipped_commands;
    if (in_flight_commands_ == 0) {
      busy_since_ = Clock::now();
    }
    in_flight_commands_ += commands;
    pop_finished_front();
    if (skipped_commands > 0) {
      client_.on_capacity_freed();
    }
    if (write_buffer_.empty()) {
      continue;
    }

    last_write_ = Clock::now();
    boost::system::error_code ec;
    co_await asio::async_write(stream_.socket(), asio::buffer(write_buffer_),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      throw_io_error("write", ec);
    }
    if (write_buffer_.capacity() > kWriteBufferKeep) {
      std::string().swap(write_buffer_);
    }
  }
}

asio::awaitable<void> Connection::health_loop() {
  const ClientOptions& options = client_.options();
  // Checking four times per period keeps detection within 25 % of the
  // configured times.
  auto tick = std::max<Clock::duration>(std::min(options.keepalive_interval, options.keepalive_timeout) / 4,
                                        std::chrono::milliseconds(1));
  asio::steady_timer timer(client_.executor());
  for (;;) {
    timer.expires_after(tick);
    co_await timer.async_wait(asio::use_awaitable);

    Clock::time_point now = Clock::now();
    if (in_flight_commands_ > 0) {
      Clock::duration silent = now - std::max(last_read_, busy_since_);
      if (silent >= options.keepalive_timeout) {
        throw Error(Errc::timeout, "no reply for " + std::to_string(to_ms(silent)) + " ms with " +
                                       std::to_string(in_flight_commands_) + " commands in flight");
      }
    } else if (requests_.empty() && now - std::max(last_read_, last_write_) >= options.keepalive_interval) {
      enqueue_keepalive();
    }
  }
}

void Connection::go_down(const std::string& reason) {
  bool was_up = up_;
  up_ = false;
  stream_.close();
  stream_.reader().reset();

  std::size_t lost = 0;
  bool closing = client_.stopping();
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    Request& request = requests_[i];
    RequestWaiter* waiter = request.waiter;
    if (waiter == nullptr) {
      continue;
    }
    if (i < written_ && !request.skipped) {
      // Written, maybe executed: fail it, never send it again.
      waiter->failure_code = closing ? Errc::closed : Errc::connection_lost;
      waiter->failure = "redis " + std::string(waiter->name) + " on " + label_ +
                        ": connection lost after the request was written (" + reason +
                        "); it may have been executed";
      waiter->complete(Outcome::failed);
      ++lost;
    } else {
      waiter->complete(Outcome::requeue);
    }
  }
  requests_.clear();
  written_ = 0;
  pending_commands_ = 0;
  unwritten_commands_ = 0;
  in_flight_commands_ = 0;
  if (!closing) {
    client_.counters().connection_lost += lost;
  }

  if (was_up) {
    if (!closing) {
      client_.logger().warn("connection lost: {} reason=\"{}\" failed_requests={}", label_, reason, lost);
    }
    client_.on_connection_down(*this);
  }
}

}  // namespace sluice::redis::detail
