#include <sluice/redis/subscriber.hpp>

#include <algorithm>
#include <deque>
#include <exception>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/logger.h>

#include <sluice/redis/command.hpp>
#include <sluice/redis/error.hpp>
#include <sluice/redis/url.hpp>
#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/task_set.hpp>

#include "redis/deadline.hpp"
#include "redis/dedicated_connection.hpp"
#include "redis/wait_list.hpp"

namespace sluice::redis {
namespace detail {
namespace {

namespace asio = boost::asio;

// Repeated connect failures are logged at most this often.
constexpr auto kConnectFailureLogInterval = std::chrono::seconds(10);

enum class Target : std::uint8_t { channels, patterns };

std::int64_t to_ms(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

void validate(const SubscriberOptions& options) {
  auto positive = [](std::chrono::milliseconds value, const char* name) {
    if (value <= std::chrono::milliseconds::zero()) {
      throw std::invalid_argument(std::string("redis::SubscriberOptions::") + name + " must be positive");
    }
  };
  positive(options.connect_timeout, "connect_timeout");
  positive(options.command_timeout, "command_timeout");
  positive(options.keepalive_interval, "keepalive_interval");
  positive(options.keepalive_timeout, "keepalive_timeout");
  positive(options.reconnect_backoff_min, "reconnect_backoff_min");
  if (options.reconnect_backoff_max < options.reconnect_backoff_min) {
    throw std::invalid_argument(
        "redis::SubscriberOptions::reconnect_backoff_max must not be below reconnect_backoff_min");
  }
  if (options.max_buffered_messages == 0) {
    throw std::invalid_argument("redis::SubscriberOptions::max_buffered_messages must be at least 1");
  }
  if (options.client_name.find_first_of(" \r\n") != std::string::npos) {
    throw std::invalid_argument("redis::SubscriberOptions::client_name must not contain spaces or newlines");
  }
}

}  // namespace

class SubscriberImpl : public std::enable_shared_from_this<SubscriberImpl> {
 public:
  SubscriberImpl(asio::any_io_executor executor, SubscriberOptions options)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        logger_(runtime::module_logger("sluice.redis")),
        random_(std::random_device{}()),
        stream_(executor_),
        write_signal_(executor_, Clock::time_point::max()),
        sleep_timer_(executor_),
        tasks_(executor_, "redis subscriber") {
    validate(options_);
    handshake_.address = parse_url(options_.url);
    handshake_.client_name = options_.client_name;
  }

  void start() { tasks_.spawn("redis subscriber connection", run_loop(shared_from_this())); }

  void stop_now() noexcept {
    if (closing_) {
      return;
    }
    closing_ = true;
    stream_.close();
    sleep_timer_.cancel();
    write_signal_.cancel();
    tasks_.cancel_all();
    message_waiters_.notify_all();
    confirm_waiters_.notify_all();
    space_waiters_.notify_all();
  }

  SubscriberStats stats() const noexcept {
    SubscriberStats out = stats_;
    out.buffered_messages = messages_.size();
    out.channels = channels_.size();
    out.patterns = patterns_.size();
    out.connected = up_;
    return out;
  }

  static asio::awaitable<void> change(std::shared_ptr<SubscriberImpl> self, Target target, bool add,
                                      std::vector<std::string> names) {
    co_await self->change_subscriptions(target, add, std::move(names));
  }

  static asio::awaitable<std::optional<Message>> next(std::shared_ptr<SubscriberImpl> self,
                                                      Clock::time_point deadline) {
    for (;;) {
      if (!self->messages_.empty()) {
        Message message = std::move(self->messages_.front());
        self->messages_.pop_front();
        self->space_waiters_.notify_one();
        co_return message;
      }
      if (self->closing_) {
        throw Error(Errc::closed, "redis subscriber: closed");
      }
      bool notified = co_await self->message_waiters_.wait_until(self->executor_, deadline);
      if (!notified && self->messages_.empty()) {
        co_return std::nullopt;
      }
    }
  }

  static asio::awaitable<void> run_close(std::shared_ptr<SubscriberImpl> self) {
    self->stop_now();
    co_await self->tasks_.join();
  }

 private:
  static asio::awaitable<void> run_loop(std::shared_ptr<SubscriberImpl> self) { co_await self->run(); }

  std::set<std::string>& wanted(Target target) { return target == Target::channels ? channels_ : patterns_; }
  std::set<std::string>& confirmed(Target target) {
    return target == Target::channels ? confirmed_channels_ : confirmed_patterns_;
  }

  asio::awaitable<void> change_subscriptions(Target target, bool add, std::vector<std::string> names) {
    const char* verb = target == Target::channels ? (add ? "SUBSCRIBE" : "UNSUBSCRIBE")
                                                  : (add ? "PSUBSCRIBE" : "PUNSUBSCRIBE");
    if (closing_) {
      throw Error(Errc::closed, std::string("redis ") + verb + ": the subscriber is closed");
    }
    if (names.empty()) {
      co_return;
    }
    for (const std::string& name : names) {
      if (add) {
        wanted(target).insert(name);
      } else {
        wanted(target).erase(name);
      }
    }
    if (up_) {
      Command command(verb);
      command.args(names);
      send(command);
    }

    Clock::time_point deadline = Clock::now() + options_.command_timeout;
    for (;;) {
      const std::set<std::string>& done = confirmed(target);
      bool finished = std::all_of(names.begin(), names.end(),
                                  [&](const std::string& name) { return done.contains(name) == add; });
      if (finished || (!add && !up_)) {
        co_return;
      }
      if (closing_) {
        throw Error(Errc::closed, std::string("redis ") + verb + ": the subscriber is closed");
      }
      if (Clock::now() >= deadline) {
        throw Error(Errc::timeout, std::string("redis ") + verb + " on " + handshake_.address.endpoint() +
                                       ": no confirmation within " +
                                       std::to_string(options_.command_timeout.count()) + " ms" +
                                       (up_ ? "" : " (not connected; last connect error: " + last_connect_error_ + ")"));
      }
      co_await confirm_waiters_.wait_until(executor_, deadline);
    }
  }

  void send(const Command& command) {
    if (!up_) {
      return;
    }
    command.encode_to(outbox_);
    if (writer_waiting_) {
      writer_waiting_ = false;
      write_signal_.cancel();
    }
  }

  asio::awaitable<void> run() {
    std::size_t failures = 0;
    while (!closing_) {
      std::string error;
      try {
        co_await stream_.open(handshake_, Clock::now() + options_.connect_timeout);
      } catch (const std::exception& e) {
        error = e.what();
        if (error.empty()) {
          error = "unknown error";
        }
      }
      if (closing_) {
        break;
      }
      if (!error.empty()) {
        on_connect_failed(error);
        sleep_timer_.expires_after(
            reconnect_delay(options_.reconnect_backoff_min, options_.reconnect_backoff_max, failures, random_));
        ++failures;
        co_await sleep_timer_.async_wait(asio::use_awaitable);
        continue;
      }

      failures = 0;
      up_ = true;
      ++stats_.connects;
      if (ever_up_) {
        ++stats_.reconnects;
      }
      ever_up_ = true;
      logger_->info("subscriber connected: endpoint={} channels={} patterns={}", handshake_.address.endpoint(),
                    channels_.size(), patterns_.size());
      outbox_.clear();
      pings_outstanding_ = 0;
      last_read_ = last_write_ = Clock::now();
      if (!channels_.empty()) {
        Command subscribe("SUBSCRIBE");
        subscribe.args(channels_);
        send(subscribe);
      }
      if (!patterns_.empty()) {
        Command psubscribe("PSUBSCRIBE");
        psubscribe.args(patterns_);
        send(psubscribe);
      }

      std::string reason;
      try {
        co_await session();
      } catch (const std::exception& e) {
        reason = e.what();
      }
      up_ = false;
      stream_.close();
      confirmed_channels_.clear();
      confirmed_patterns_.clear();
      confirm_waiters_.notify_all();
      if (!closing_) {
        logger_->warn("subscriber connection lost: endpoint={} reason=\"{}\"", handshake_.address.endpoint(), reason);
      }
    }
  }

  void on_connect_failed(const std::string& error) {
    ++stats_.connect_failures;
    last_connect_error_ = error;
    Clock::time_point now = Clock::now();
    if (now - last_failure_log_ < kConnectFailureLogInterval) {
      ++suppressed_failure_logs_;
      return;
    }
    logger_->warn("subscriber connect failed: endpoint={} error=\"{}\" suppressed={}", handshake_.address.endpoint(),
                  error, suppressed_failure_logs_);
    last_failure_log_ = now;
    suppressed_failure_logs_ = 0;
  }

  asio::awaitable<void> session() {
    asio::awaitable<void> reader = read_loop();
  asio::awaitable<void> writer = write_loop();
  asio::awaitable<void> health = health_loop();
  co_await run_until_first_exits(std::move(reader), std::move(writer), std::move(health));
  }

  asio::awaitable<void> read_loop() {
    for (;;) {
      // A full buffer stops reading, which pushes back on the server.
      while (messages_.size() >= options_.max_buffered_messages) {
        co_await space_waiters_.wait_until(executor_, Clock::time_point::max());
      }
      Reply reply = co_await stream_.read_reply();
      last_read_ = Clock::now();
      handle(std::move(reply));
    }
  }

  void handle(Reply reply) {
    if (reply.is_error()) {
      logger_->warn("subscriber: error reply from {}: {}", handshake_.address.endpoint(), reply.error_message());
      return;
    }
    if (reply.is_string()) {
      // PONG outside subscribed mode (no channel or pattern left).
      pings_outstanding_ = 0;
      return;
    }
    if (!reply.is_array() || reply.as_array().empty() || !reply.as_array()[0].is_string()) {
      throw Error(Errc::unexpected_reply, "redis subscriber: unexpected reply " + reply.to_debug_string());
    }
    std::vector<Reply>& parts = reply.as_array();
    const std::string& kind = parts[0].as_string();

    if (kind == "message" && parts.size() == 3) {
      messages_.push_back(
          Message{.channel = parts[1].take_string(), .payload = parts[2].take_string(), .pattern = std::string()});
      ++stats_.messages_received;
      message_waiters_.notify_one();
    } else if (kind == "pmessage" && parts.size() == 4) {
      messages_.push_back(Message{
          .channel = parts[2].take_string(), .payload = parts[3].take_string(), .pattern = parts[1].take_string()});
      ++stats_.messages_received;
      message_waiters_.notify_one();
    } else if (kind == "subscribe" && parts.size() == 3) {
      confirmed_channels_.insert(parts[1].take_string());
      confirm_waiters_.notify_all();
    } else if (kind == "psubscribe" && parts.size() == 3) {
      confirmed_patterns_.insert(parts[1].take_string());
      confirm_waiters_.notify_all();
    } else if (kind == "unsubscribe" && parts.size() == 3) {
      if (parts[1].is_string()) {
        confirmed_channels_.erase(parts[1].as_string());
      }
      confirm_waiters_.notify_all();
    } else if (kind == "punsubscribe" && parts.size() == 3) {
      if (parts[1].is_string()) {
        confirmed_patterns_.erase(parts[1].as_string());
      }
      confirm_waiters_.notify_all();
    } else if (kind == "pong") {
      pings_outstanding_ = 0;
    } else {
      throw Error(Errc::unexpected_reply, "redis subscriber: unexpected reply " + reply.to_debug_string());
    }
  }

  asio::awaitable<void> write_loop() {
    for (;;) {
      if (outbox_.empty()) {
        writer_waiting_ = true;
        boost::system::error_code ec;
        co_await write_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        writer_waiting_ = false;
        continue;
      }
      write_buffer_.swap(outbox_);
      outbox_.clear();
      last_write_ = Clock::now();
      co_await stream_.write(write_buffer_);
      write_buffer_.clear();
    }
  }

  asio::awaitable<void> health_loop() {
    auto tick = std::max<Clock::duration>(
        std::min(options_.keepalive_interval, options_.keepalive_timeout) / 4, std::chrono::milliseconds(1));
    asio::steady_timer timer(executor_);
    for (;;) {
      timer.expires_after(tick);
      co_await timer.async_wait(asio::use_awaitable);

      Clock::time_point now = Clock::now();
      bool reading = messages_.size() < options_.max_buffered_messages;
      if (pings_outstanding_ > 0 && reading && now - ping_sent_ >= options_.keepalive_timeout &&
          now - last_read_ >= options_.keepalive_timeout) {
        throw Error(Errc::timeout, "no reply to PING for " + std::to_string(to_ms(now - ping_sent_)) + " ms");
      }
      if (pings_outstanding_ == 0 && now - std::max(last_read_, last_write_) >= options_.keepalive_interval) {
        send(Command("PING"));
        ++pings_outstanding_;
        ping_sent_ = now;
      }
    }
  }

  asio::any_io_executor executor_;
  SubscriberOptions options_;
  Handshake handshake_;
  std::shared_ptr<spdlog::logger> logger_;
  std::minstd_rand random_;
  DedicatedConnection stream_;
  asio::steady_timer write_signal_;
  asio::steady_timer sleep_timer_;

  std::string outbox_;
  std::string write_buffer_;
  bool writer_waiting_ = false;
  bool up_ = false;
  bool ever_up_ = false;
  bool closing_ = false;

  std::set<std::string> channels_;
  std::set<std::string> patterns_;
  std::set<std::string> confirmed_channels_;
  std::set<std::string> confirmed_patterns_;
  std::deque<Message> messages_;
  WaitList message_waiters_;
  WaitList space_waiters_;
  WaitList confirm_waiters_;

  Clock::time_point last_read_{};
  Clock::time_point last_write_{};
  Clock::time_point ping_sent_{};
  std::size_t pings_outstanding_ = 0;
  std::string last_connect_error_ = "no connect attempt finished yet";
  Clock::time_point last_failure_log_{};
  std::uint64_t suppressed_failure_logs_ = 0;
  SubscriberStats stats_;
  // Declared last so that it is destroyed first.
  runtime::TaskSet tasks_;
};

}  // namespace detail

using detail::SubscriberImpl;
using detail::Target;

Subscriber::Subscriber(executor_type executor, SubscriberOptions options)
    : impl_(std::make_shared<SubscriberImpl>(std::move(executor), std::move(options))) {
  impl_->start();
}

Subscriber::~Subscriber() {
  if (impl_) {
    impl_->stop_now();
  }
}

boost::asio::awaitable<void> Subscriber::subscribe(std::vector<std::string> channels) {
  return SubscriberImpl::change(impl_, Target::channels, true, std::move(channels));
}

boost::asio::awaitable<void> Subscriber::psubscribe(std::vector<std::string> patterns) {
  return SubscriberImpl::change(impl_, Target::patterns, true, std::move(patterns));
}

boost::asio::awaitable<void> Subscriber::unsubscribe(std::vector<std::string> channels) {
  return SubscriberImpl::change(impl_, Target::channels, false, std::move(channels));
}

boost::asio::awaitable<void> Subscriber::punsubscribe(std::vector<std::string> patterns) {
  return SubscriberImpl::change(impl_, Target::patterns, false, std::move(patterns));
}

boost::asio::awaitable<Message> Subscriber::next_message() {
  auto impl = impl_;
  std::optional<Message> message = co_await SubscriberImpl::next(impl, detail::Clock::time_point::max());
  if (!message) {
    throw Error(Errc::closed, "redis subscriber: closed");
  }
  co_return std::move(*message);
}

boost::asio::awaitable<std::optional<Message>> Subscriber::next_message(std::chrono::milliseconds timeout) {
  return SubscriberImpl::next(impl_, detail::Clock::now() + timeout);
}

SubscriberStats Subscriber::stats() const noexcept {
  return impl_->stats();
}

boost::asio::awaitable<void> Subscriber::close() {
  return SubscriberImpl::run_close(impl_);
}

}  // namespace sluice::redis
