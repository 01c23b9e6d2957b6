#include <sluice/redis/client.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <sluice/redis/url.hpp>
#include <sluice/runtime/logging.hpp>

#include "redis/client_impl.hpp"

namespace sluice::redis {
namespace detail {
namespace {

namespace asio = boost::asio;

// Repeated connect failures are logged at most this often, with the count of
// failures not logged in between.
constexpr auto kConnectFailureLogInterval = std::chrono::seconds(10);

std::int64_t to_ms(Clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

// Commands that change the state of the connection they run on, or block
// it, and so cannot share a multiplexed connection with other callers.
void check_shareable(const Command& command) {
  std::string_view raw = command.name();
  if (raw.empty()) {
    throw std::invalid_argument("redis: empty command");
  }
  if (raw.size() > 12) {
    return;
  }
  std::string name = upper(raw);
  static constexpr std::array<std::string_view, 5> kTransaction{"MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"};
  static constexpr std::array<std::string_view, 7> kPubSub{"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE",
                                                           "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR"};
  static constexpr std::array<std::string_view, 4> kSession{"SELECT", "QUIT", "RESET", "HELLO"};
  static constexpr std::array<std::string_view, 9> kBlocking{"BLPOP",    "BRPOP",    "BRPOPLPUSH", "BLMOVE", "BLMPOP",
                                                             "BZPOPMIN", "BZPOPMAX", "BZMPOP",     "WAIT"};
  auto contains = [&name](const auto& list) { return std::find(list.begin(), list.end(), name) != list.end(); };
  if (contains(kTransaction)) {
    throw std::invalid_argument("redis " + name +
                                ": transactions on the shared connections must use Client::transaction");
  }
  if (contains(kPubSub)) {
    throw std::invalid_argument("redis " + name + ": use redis::Subscriber for pub/sub");
  }
  if (contains(kSession)) {
    throw std::invalid_argument("redis " + name +
                                ": changes the state of a shared connection; set the database in the URL");
  }
  if (contains(kBlocking)) {
    throw std::invalid_argument("redis " + name + ": blocking commands must use Client::execute_blocking");
  }
}

void validate(const ClientOptions& options) {
  auto positive = [](std::chrono::milliseconds value, const char* name) {
    if (value <= std::chrono::milliseconds::zero()) {
      throw std::invalid_argument(std::string("redis::ClientOptions::") + name + " must be positive");
    }
  };
  if (options.connections == 0) {
    throw std::invalid_argument("redis::ClientOptions::connections must be at least 1");
  }
  if (options.max_pending == 0) {
    throw std::invalid_argument("redis::ClientOptions::max_pending must be at least 1");
  }
  if (options.max_blocking_connections == 0) {
    throw std::invalid_argument("redis::ClientOptions::max_blocking_connections must be at least 1");
  }
  positive(options.connect_timeout, "connect_timeout");
  positive(options.command_timeout, "command_timeout");
  positive(options.keepalive_interval, "keepalive_interval");
  positive(options.keepalive_timeout, "keepalive_timeout");
  positive(options.reconnect_backoff_min, "reconnect_backoff_min");
  if (options.reconnect_backoff_max < options.reconnect_backoff_min) {
    throw std::invalid_argument("redis::ClientOptions::reconnect_backoff_max must not be below reconnect_backoff_min");
  }
  if (options.client_name.find_first_of(" \r\n") != std::string::npos) {
    throw std::invalid_argument("redis::ClientOptions::client_name must not contain spaces or newlines");
  }
}

// Decrements a counter when the scope ends, however it ends.
struct CountGuard {
  explicit CountGuard(std::size_t& counter) : counter_(counter) { ++counter_; }
  CountGuard(const CountGuard&) = delete;
  CountGuard& operator=(const CountGuard&) = delete;
  ~CountGuard() { --counter_; }
  std::size_t& counter_;
};

}  // namespace

// Returns a dedicated connection to the pool (or closes it) when the
// blocking call ends, however it ends.
struct ClientImpl::BlockingLease {
  BlockingLease(std::shared_ptr<ClientImpl> owner, std::unique_ptr<DedicatedConnection> taken)
      : client(std::move(owner)), connection(std::move(taken)) {
    client->busy_blocking_.insert(connection.get());
  }
  BlockingLease(const BlockingLease&) = delete;
  BlockingLease& operator=(const BlockingLease&) = delete;
  ~BlockingLease() {
    client->busy_blocking_.erase(connection.get());
    client->release_blocking(std::move(connection), reusable);
  }

  std::shared_ptr<ClientImpl> client;
  std::unique_ptr<DedicatedConnection> connection;
  bool reusable = false;
};

ClientImpl::ClientImpl(asio::any_io_executor executor, ClientOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      logger_(runtime::module_logger("sluice.redis")),
      random_(std::random_device{}()),
      tasks_(executor_, "redis") {
  validate(options_);
  handshake_.address = parse_url(options_.url);
  handshake_.client_name = options_.client_name;
  down_since_ = Clock::now();
  connections_.reserve(options_.connections);
  for (std::size_t i = 0; i < options_.connections; ++i) {
    connections_.push_back(std::make_unique<Connection>(*this, i));
  }
}

ClientImpl::~ClientImpl() = default;

void ClientImpl::start() {
  for (std::size_t i = 0; i < connections_.size(); ++i) {
    tasks_.spawn("redis connection " + std::to_string(i), run_connection(shared_from_this(), i));
  }
}

asio::awaitable<void> ClientImpl::run_connection(std::shared_ptr<ClientImpl> self, std::size_t index) {
  co_await self->connections_[index]->run();
}

void ClientImpl::stop_now() noexcept {
  closing_ = true;
  if (stopping_) {
    return;
  }
  stopping_ = true;
  for (auto& connection : connections_) {
    connection->stop();
  }
  tasks_.cancel_all();
  for (DedicatedConnection* connection : busy_blocking_) {
    connection->close();
  }
  for (auto& connection : idle_blocking_) {
    connection->close();
  }
  open_blocking_ -= idle_blocking_.size();
  idle_blocking_.clear();
  connect_waiters_.notify_all();
  capacity_waiters_.notify_all();
  blocking_waiters_.notify_all();
  drained_.notify_all();
}

ClientStats ClientImpl::stats() const noexcept {
  ClientStats out = stats_;
  out.connections_up = connections_up_;
  out.in_flight = 0;
  out.queued = 0;
  for (const auto& connection : connections_) {
    out.in_flight += connection->in_flight_commands();
    out.queued += connection->unwritten_commands();
  }
  out.waiting = waiting_;
  out.blocking_connections = open_blocking_;
  return out;
}

std::size_t ClientImpl::pending_commands() const noexcept {
  std::size_t total = 0;
  for (const auto& connection : connections_) {
    total += connection->pending_commands();
  }
  return total;
}

void ClientImpl::on_connection_up(Connection& connection) {
  ++connections_up_;
  ++stats_.connects;
  if (connection.ever_up_) {
    ++stats_.reconnects;
  }
  logger_->info("connection up: {} connections_up={}", connection.label_, connections_up_);
  suppressed_failure_logs_ = 0;
  last_failure_log_ = Clock::time_point{};
  connect_waiters_.notify_all();
  capacity_waiters_.notify_all();
}

void ClientImpl::on_connection_down(Connection& connection) {
  --connections_up_;
  if (connections_up_ == 0) {
    down_since_ = Clock::now();
  }
  if (closing_ && pending_commands() == 0) {
    drained_.notify_all();
  }
}

void ClientImpl::on_connect_failed(Connection& connection, const std::string& error) {
  ++stats_.connect_failures;
  last_connect_error_ = error;
  Clock::time_point now = Clock::now();
  if (now - last_failure_log_ < kConnectFailureLogInterval) {
    ++suppressed_failure_logs_;
    return;
  }
  logger_->warn("connect failed: {} error=\"{}\" suppressed={}", connection.label_, error, suppressed_failure_logs_);
  last_failure_log_ = now;
  suppressed_failure_logs_ = 0;
}

void ClientImpl::on_capacity_freed() {
  if (!capacity_waiters_.empty()) {
    capacity_waiters_.notify_one();
  }
  if (closing_ && !drained_.empty() && pending_commands() == 0) {
    drained_.notify_all();
  }
}

Connection* ClientImpl::pick_connection(std::size_t commands) noexcept {
  std::size_t count = connections_.size();
  Connection* best = nullptr;
  for (std::size_t k = 0; k < count; ++k) {
    Connection& connection = *connections_[(next_connection_ + k) % count];
    if (!connection.up() || !connection.has_room_for(commands)) {
      continue;
    }
    if (best == nullptr || connection.pending_commands() < best->pending_commands()) {
      best = &connection;
    }
  }
  if (best != nullptr) {
    next_connection_ = (next_connection_ + 1) % count;
  }
  return best;
}

void ClientImpl::throw_not_connected(const RequestWaiter& waiter) {
  ++stats_.not_connected;
  throw Error(Errc::not_connected, "redis " + std::string(waiter.name) + ": no connection to " +
                                       handshake_.address.endpoint() + " for " +
                                       std::to_string(to_ms(Clock::now() - down_since_)) +
                                       " ms; last connect error: " + last_connect_error_);
}

void ClientImpl::throw_timeout(const RequestWaiter& waiter, bool written) {
  ++stats_.timeouts;
  std::string message = "redis " + std::string(waiter.name) + " on " + handshake_.address.endpoint() +
                        " timed out after " + std::to_string(to_ms(Clock::now() - waiter.started)) + " ms";
  if (written) {
    message += " waiting for the reply; it may have been executed";
  } else if (connections_up_ == 0) {
    message += " before it was sent (no connection; last connect error: " + last_connect_error_ + ")";
  } else {
    message += " before it was sent";
  }
  throw Error(Errc::timeout, message);
}

asio::awaitable<void> ClientImpl::wait_for_connection(RequestWaiter& waiter) {
  for (;;) {
    if (closing_) {
      throw Error(Errc::closed, "redis " + std::string(waiter.name) + ": the client is closed");
    }
    if (Connection* connection = pick_connection(waiter.commands)) {
      connection->enqueue(waiter);
      co_return;
    }
    Clock::time_point now = Clock::now();
    if (now >= waiter.deadline) {
      throw_timeout(waiter, false);
    }

    CountGuard waiting(waiting_);
    if (connections_up_ == 0) {
      // Wait only while the outage is younger than connect_timeout, so that
      // a long outage fails requests at once instead of stalling them.
      Clock::time_point give_up = std::min(waiter.deadline, down_since_ + options_.connect_timeout);
      if (give_up <= now) {
        throw_not_connected(waiter);
      }
      co_await connect_waiters_.wait_until(executor_, give_up);
    } else {
      co_await capacity_waiters_.wait_until(executor_, waiter.deadline);
    }
  }
}

asio::awaitable<void> ClientImpl::submit(RequestWaiter& waiter) {
  for (;;) {
    Connection* connection = closing_ ? nullptr : pick_connection(waiter.commands);
    if (connection != nullptr) {
      connection->enqueue(waiter);
    } else {
      co_await wait_for_connection(waiter);
    }

    boost::system::error_code ec;
    co_await waiter.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    switch (waiter.outcome) {
      case Outcome::replied:
        co_return;
      case Outcome::failed:
        throw Error(waiter.failure_code, waiter.failure);
      case Outcome::requeue:
        waiter.outcome = Outcome::pending;
        waiter.written = false;
        continue;
      case Outcome::pending:
        break;
    }

    bool written = waiter.written;
    waiter.detach();
    if (!ec) {
      throw_timeout(waiter, written);
    }
    ++stats_.cancellations;
    throw boost::system::system_error(asio::error::operation_aborted,
                                      "redis " + std::string(waiter.name) + " cancelled");
  }
}

asio::awaitable<Reply> ClientImpl::run_command(std::shared_ptr<ClientImpl> self, Command command,
                                               std::chrono::milliseconds timeout) {
  check_shareable(command);
  Clock::time_point deadline = Clock::now() + timeout;
  RequestWaiter waiter(self->executor_, deadline, std::string(), 1, command.name());
  waiter.command = &command;
  co_await self->submit(waiter);
  co_return std::move(waiter.reply);
}

asio::awaitable<std::vector<Reply>> ClientImpl::run_pipeline(std::shared_ptr<ClientImpl> self,
                                                             std::vector<Command> commands,
                                                             std::chrono::milliseconds timeout) {
  if (commands.empty()) {
    co_return std::vector<Reply>{};
  }
  Clock::time_point deadline = Clock::now() + timeout;
  std::string payload;
  for (const Command& command : commands) {
    check_shareable(command);
    command.encode_to(payload);
  }
  std::string name = "pipeline of " + std::to_string(commands.size()) + " commands";
  RequestWaiter waiter(self->executor_, deadline, std::move(payload), static_cast<std::uint32_t>(commands.size()),
                       name);
  co_await self->submit(waiter);
  co_return std::move(waiter.replies);
}

asio::awaitable<std::vector<Reply>> ClientImpl::run_transaction(std::shared_ptr<ClientImpl> self,
                                                                std::vector<Command> commands) {
  if (commands.empty()) {
    co_return std::vector<Reply>{};
  }
  Clock::time_point deadline = Clock::now() + self->options_.command_timeout;
  std::string payload;
  Command("MULTI").encode_to(payload);
  for (const Command& command : commands) {
    check_shareable(command);
    command.encode_to(payload);
  }
  Command("EXEC").encode_to(payload);
  RequestWaiter waiter(self->executor_, deadline, std::move(payload),
                       static_cast<std::uint32_t>(commands.size() + 2), "MULTI/EXEC");
  co_await self->submit(waiter);

  std::vector<Reply>& replies = waiter.replies;
  replies.front().throw_if_error("MULTI");
  Reply& exec = replies.back();
  if (exec.is_error()) {
    // EXECABORT names no command; add the first queuing error.
    std::string message(exec.error_message());
    for (std::size_t i = 1; i + 1 < replies.size(); ++i) {
      if (replies[i].is_error()) {
        message += " (command " + std::to_string(i) + ", " + std::string(commands[i - 1].name()) +
                   ": " + std::string(replies[i].error_message()) + ")";
        break;
      }
    }
    throw ServerError("EXEC", message);
  }
  if (!exec.is_array()) {
    throw Error(Errc::unexpected_reply, "redis EXEC: expected an array, got " + exec.to_debug_string());
  }
  co_return std::move(exec.as_array());
}

asio::awaitable<std::unique_ptr<DedicatedConnection>> ClientImpl::acquire_blocking(Clock::time_point deadline,
                                                                                  std::string_view name) {
  for (;;) {
    if (closing_) {
      throw Error(Errc::closed, "redis " + std::string(name) + ": the client is closed");
    }
    while (!idle_blocking_.empty()) {
      std::unique_ptr<DedicatedConnection> connection = std::move(idle_blocking_.back());
      idle_blocking_.pop_back();
      if (connection->idle_and_alive()) {
        co_return connection;
      }
      connection->close();
      --open_blocking_;
    }
    if (open_blocking_ < options_.max_blocking_connections) {
      ++open_blocking_;
      auto connection = std::make_unique<DedicatedConnection>(executor_);
      std::string error;
      try {
        co_await connection->open(handshake_, std::min(deadline, Clock::now() + options_.connect_timeout));
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (error.empty()) {
        co_return connection;
      }
      --open_blocking_;
      ++stats_.connect_failures;
      last_connect_error_ = error;
      blocking_waiters_.notify_one();
      throw Error(Errc::not_connected, "redis " + std::string(name) + ": opening a dedicated connection failed: " + error);
    }
    Clock::time_point now = Clock::now();
    if (now >= deadline) {
      ++stats_.timeouts;
      throw Error(Errc::timeout, "redis " + std::string(name) + ": all " +
                                     std::to_string(options_.max_blocking_connections) +
                                     " dedicated connections stayed busy until the deadline");
    }
    CountGuard waiting(waiting_);
    co_await blocking_waiters_.wait_until(executor_, deadline);
  }
}

void ClientImpl::release_blocking(std::unique_ptr<DedicatedConnection> connection, bool reusable) noexcept {
  if (reusable && !closing_ && connection->is_open()) {
    idle_blocking_.push_back(std::move(connection));
  } else {
    connection->close();
    --open_blocking_;
  }
  blocking_waiters_.notify_one();
}

asio::awaitable<Reply> ClientImpl::run_blocking(std::shared_ptr<ClientImpl> self, Command command,
                                                std::chrono::milliseconds timeout) {
  if (command.empty()) {
    throw std::invalid_argument("redis: empty command");
  }
  Clock::time_point deadline = Clock::now() + timeout;
  std::string name(command.name());
  std::unique_ptr<DedicatedConnection> taken = co_await self->acquire_blocking(deadline, name);
  BlockingLease lease(self, std::move(taken));

  std::string payload = command.encode();
  std::string what = "redis " + name + " on a dedicated connection to " + self->handshake_.address.endpoint();
  std::vector<Reply> replies;
  bool timed_out = false;
  try {
    replies = co_await lease.connection->exchange(payload, 1, deadline, std::move(what));
  } catch (const Error& e) {
    timed_out = e.errc() == Errc::timeout;
    if (!timed_out) {
      throw;
    }
  }
  if (timed_out) {
    ++self->stats_.timeouts;
    throw Error(Errc::timeout, "redis " + name + " on a dedicated connection timed out after " +
                                   std::to_string(timeout.count()) + " ms; it may have been executed");
  }
  ++self->stats_.commands_sent;
  ++self->stats_.replies_received;
  if (replies.front().is_error()) {
    ++self->stats_.error_replies;
  }
  lease.reusable = true;
  co_return std::move(replies.front());
}

asio::awaitable<void> ClientImpl::run_close(std::shared_ptr<ClientImpl> self, std::chrono::milliseconds drain_timeout) {
  if (!self->closing_) {
    self->closing_ = true;
    self->logger_->info("closing: endpoint={} pending_commands={}", self->handshake_.address.endpoint(),
                        self->pending_commands());
    self->connect_waiters_.notify_all();
    self->capacity_waiters_.notify_all();
    self->blocking_waiters_.notify_all();
    Clock::time_point deadline = Clock::now() + drain_timeout;
    while (!self->stopping_ && self->pending_commands() > 0 && Clock::now() < deadline) {
      co_await self->drained_.wait_until(self->executor_, deadline);
    }
    self->stop_now();
  }
  co_await self->tasks_.join();
}

}  // namespace detail

namespace {

namespace asio = boost::asio;
using detail::ClientImpl;

asio::awaitable<void> finish_ping(std::shared_ptr<ClientImpl> self, Command command) {
  auto timeout = self->command_timeout();
  Reply reply = co_await ClientImpl::run_command(std::move(self), std::move(command), timeout);
  reply.throw_if_error("PING");
}

asio::awaitable<std::optional<std::string>> finish_string(std::shared_ptr<ClientImpl> self, Command command) {
  auto timeout = self->command_timeout();
  std::string name(command.name());
  Reply reply = co_await ClientImpl::run_command(std::move(self), std::move(command), timeout);
  reply.throw_if_error(name);
  if (reply.is_nil()) {
    co_return std::nullopt;
  }
  co_return reply.take_string();
}

asio::awaitable<std::int64_t> finish_integer(std::shared_ptr<ClientImpl> self, Command command) {
  auto timeout = self->command_timeout();
  std::string name(command.name());
  Reply reply = co_await ClientImpl::run_command(std::move(self), std::move(command), timeout);
  reply.throw_if_error(name);
  co_return reply.as_integer();
}

asio::awaitable<bool> finish_set(std::shared_ptr<ClientImpl> self, Command command) {
  auto timeout = self->command_timeout();
  Reply reply = co_await ClientImpl::run_command(std::move(self), std::move(command), timeout);
  reply.throw_if_error("SET");
  co_return !reply.is_nil();
}

asio::awaitable<bool> finish_expire(std::shared_ptr<ClientImpl> self, Command command) {
  std::int64_t result = co_await finish_integer(std::move(self), std::move(command));
  co_return result == 1;
}

asio::awaitable<std::string> finish_xadd(std::shared_ptr<ClientImpl> self, Command command) {
  std::optional<std::string> id = co_await finish_string(std::move(self), std::move(command));
  if (!id) {
    throw Error(Errc::unexpected_reply, "redis XADD returned nil");
  }
  co_return std::move(*id);
}

asio::awaitable<Reply> finish_eval(std::shared_ptr<ClientImpl> self, const Script& script, Arguments keys_and_args,
                                   std::size_t key_count) {
  auto timeout = self->command_timeout();
  Command evalsha("EVALSHA", script.sha1(), key_count);
  evalsha.append(keys_and_args);
  Reply reply = co_await ClientImpl::run_command(self, std::move(evalsha), timeout);
  if (!reply.is_error() || reply.error_code() != "NOSCRIPT") {
    co_return reply;
  }
  // The server does not have the script (first use, restart, SCRIPT
  // FLUSH); EVAL runs it and caches it for the next EVALSHA.
  Command eval("EVAL", script.source(), key_count);
  eval.append(keys_and_args);
  co_return co_await ClientImpl::run_command(std::move(self), std::move(eval), timeout);
}

std::vector<StreamEntry> parse_stream_entries(const Reply& reply) {
  std::vector<StreamEntry> entries;
  if (reply.is_nil()) {
    return entries;
  }
  // [[stream, [[id, [field, value, ...]], ...]], ...]
  for (const Reply& stream : reply.as_array()) {
    const std::vector<Reply>& parts = stream.as_array();
    if (parts.size() != 2) {
      throw Error(Errc::unexpected_reply, "redis XREADGROUP: malformed stream reply " + stream.to_debug_string());
    }
    for (const Reply& item : parts[1].as_array()) {
      const std::vector<Reply>& pair = item.as_array();
      if (pair.size() != 2) {
        throw Error(Errc::unexpected_reply, "redis XREADGROUP: malformed entry " + item.to_debug_string());
      }
      StreamEntry entry;
      entry.id = pair[0].as_string();
      // An entry deleted after delivery comes back with nil fields.
      if (pair[1].is_array()) {
        const std::vector<Reply>& fields = pair[1].as_array();
        for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
          entry.fields.emplace_back(fields[i].as_string(), fields[i + 1].as_string());
        }
      }
      entries.push_back(std::move(entry));
    }
  }
  return entries;
}

asio::awaitable<std::vector<StreamEntry>> finish_xreadgroup(std::shared_ptr<ClientImpl> self, Command command,
                                                            std::chrono::milliseconds block) {
  auto timeout = self->command_timeout();
  Reply reply;
  if (block > std::chrono::milliseconds::zero()) {
    reply = co_await ClientImpl::run_blocking(std::move(self), std::move(command), block + timeout);
  } else {
    reply = co_await ClientImpl::run_command(std::move(self), std::move(command), timeout);
  }
  reply.throw_if_error("XREADGROUP");
  co_return parse_stream_entries(reply);
}

}  // namespace

Client::Client(executor_type executor, ClientOptions options)
    : impl_(std::make_shared<ClientImpl>(std::move(executor), std::move(options))) {
  impl_->start();
}

Client::~Client() {
  if (impl_) {
    impl_->stop_now();
  }
}

Client::executor_type Client::get_executor() const noexcept {
  return impl_->executor();
}

const ClientOptions& Client::options() const noexcept {
  return impl_->options();
}

ClientStats Client::stats() const noexcept {
  return impl_->stats();
}

asio::awaitable<Reply> Client::execute(Command command) {
  return ClientImpl::run_command(impl_, std::move(command), impl_->command_timeout());
}

asio::awaitable<Reply> Client::execute(Command command, std::chrono::milliseconds timeout) {
  return ClientImpl::run_command(impl_, std::move(command), timeout);
}

asio::awaitable<std::vector<Reply>> Client::pipeline(std::vector<Command> commands) {
  return ClientImpl::run_pipeline(impl_, std::move(commands), impl_->command_timeout());
}

asio::awaitable<std::vector<Reply>> Client::pipeline(std::vector<Command> commands,
                                                     std::chrono::milliseconds timeout) {
  return ClientImpl::run_pipeline(impl_, std::move(commands), timeout);
}

asio::awaitable<std::vector<Reply>> Client::transaction(std::vector<Command> commands) {
  return ClientImpl::run_transaction(impl_, std::move(commands));
}

asio::awaitable<Reply> Client::execute_blocking(Command command, std::chrono::milliseconds timeout) {
  return ClientImpl::run_blocking(impl_, std::move(command), timeout);
}

asio::awaitable<void> Client::ping() {
  return finish_ping(impl_, Command("PING"));
}

asio::awaitable<std::optional<std::string>> Client::get(std::string_view key) {
  return finish_string(impl_, Command("GET", key));
}

asio::awaitable<bool> Client::set(std::string_view key, std::string_view value, SetOptions options) {
  Command command("SET", key, value);
  if (options.expire > std::chrono::milliseconds::zero()) {
    command.arg("PX").arg(options.expire.count());
  } else if (options.keep_ttl) {
    command.arg("KEEPTTL");
  }
  if (options.condition == SetCondition::if_not_exists) {
    command.arg("NX");
  } else if (options.condition == SetCondition::if_exists) {
    command.arg("XX");
  }
  return finish_set(impl_, std::move(command));
}

asio::awaitable<std::int64_t> Client::del(std::string_view key) {
  return finish_integer(impl_, Command("DEL", key));
}

asio::awaitable<std::int64_t> Client::del(std::span<const std::string> keys) {
  Command command("DEL");
  command.args(keys);
  return finish_integer(impl_, std::move(command));
}

asio::awaitable<std::int64_t> Client::incr(std::string_view key, std::int64_t by) {
  return finish_integer(impl_, Command("INCRBY", key, by));
}

asio::awaitable<bool> Client::expire(std::string_view key, std::chrono::milliseconds ttl) {
  return finish_expire(impl_, Command("PEXPIRE", key, ttl.count()));
}

asio::awaitable<std::optional<std::string>> Client::hget(std::string_view key, std::string_view field) {
  return finish_string(impl_, Command("HGET", key, field));
}

asio::awaitable<std::int64_t> Client::hset(std::string_view key, std::string_view field, std::string_view value) {
  return finish_integer(impl_, Command("HSET", key, field, value));
}

asio::awaitable<std::int64_t> Client::publish(std::string_view channel, std::string_view message) {
  return finish_integer(impl_, Command("PUBLISH", channel, message));
}

asio::awaitable<Reply> Client::eval(const Script& script, const Arguments& keys, const Arguments& args) {
  Arguments keys_and_args;
  keys_and_args.append(keys).append(args);
  return finish_eval(impl_, script, std::move(keys_and_args), keys.size());
}

asio::awaitable<Reply> Client::evalsha(std::string_view sha1, const Arguments& keys, const Arguments& args) {
  Command command("EVALSHA", sha1, keys.size());
  command.append(keys).append(args);
  return ClientImpl::run_command(impl_, std::move(command), impl_->command_timeout());
}

asio::awaitable<std::string> Client::xadd(std::string_view key,
                                          std::span<const std::pair<std::string, std::string>> fields,
                                          std::size_t max_length) {
  Command command("XADD", key);
  if (max_length > 0) {
    command.arg("MAXLEN").arg("~").arg(max_length);
  }
  command.arg("*");
  for (const auto& [field, value] : fields) {
    command.arg(field).arg(value);
  }
  return finish_xadd(impl_, std::move(command));
}

asio::awaitable<std::vector<StreamEntry>> Client::xreadgroup(std::string_view key, ReadGroupOptions options) {
  Command command("XREADGROUP", "GROUP", options.group, options.consumer, "COUNT", options.count);
  if (options.block > std::chrono::milliseconds::zero()) {
    command.arg("BLOCK").arg(options.block.count());
  }
  if (options.no_ack) {
    command.arg("NOACK");
  }
  command.arg("STREAMS").arg(key).arg(options.id);
  return finish_xreadgroup(impl_, std::move(command), options.block);
}

asio::awaitable<std::int64_t> Client::xack(std::string_view key, std::string_view group,
                                           std::span<const std::string> ids) {
  Command command("XACK", key, group);
  command.args(ids);
  return finish_integer(impl_, std::move(command));
}

asio::awaitable<void> Client::close(std::chrono::milliseconds drain_timeout) {
  return ClientImpl::run_close(impl_, drain_timeout);
}

}  // namespace sluice::redis
