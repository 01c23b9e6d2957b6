#include <sluice/dispatch/dispatcher.hpp>

#include <algorithm>
#include <deque>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/semaphore.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/telegram/update.hpp>
#include <sluice/updates/update_kind.hpp>

namespace sluice::dispatch {

namespace {

struct KeyHash {
  std::size_t operator()(const updates::OrderingKey& key) const noexcept {
    const auto scope = static_cast<std::uint64_t>(key.scope);
    return std::hash<std::int64_t>{}(key.id) ^ (scope * 0x9e3779b97f4a7c15ULL);
  }
};

std::string task_name(const std::optional<updates::OrderingKey>& key, std::int64_t update_id) {
  if (!key) {
    return "update " + std::to_string(update_id);
  }
  const char* scope = key->scope == updates::OrderingKey::Scope::chat ? "chat " : "user ";
  return scope + std::to_string(key->id);
}

void log_handler_error(spdlog::logger& logger, std::int64_t update_id,
                       const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const HandlerError& handler_error) {
    logger.error("handler failed update_id={} handler=\"{}\" error=\"{}\"", update_id,
                 handler_error.handler_name(), handler_error.error());
  } catch (const std::exception& exception) {
    logger.error("handler failed update_id={} error=\"{}\"", update_id, exception.what());
  } catch (...) {
    logger.error("handler failed update_id={} error=\"unknown exception\"", update_id);
  }
}

}  // namespace

class Dispatcher::Impl {
 public:
  Impl(boost::asio::any_io_executor executor, DispatcherOptions options, UpdateHandler handler)
      : options_(validate(options)),
        handler_(std::move(handler)),
        pending_(executor, options_.max_pending_updates, "dispatch.pending"),
        running_(executor, options_.max_concurrent_updates, "dispatch.running"),
        logger_(runtime::module_logger("sluice.dispatch")),
        tasks_(executor, "dispatch") {
    if (!handler_) {
      throw std::invalid_argument("Dispatcher: the update handler is empty");
    }
  }

  boost::asio::awaitable<void> submit(telegram::Update update, updates::HandledCallback on_handled);
  boost::asio::awaitable<void> close(std::chrono::steady_clock::duration grace);

  bool has_room() const noexcept {
    return !pending_.closed() && pending_.waiters() == 0 && pending_.available() > 0;
  }

  DispatcherStats stats_;

 private:
  struct Item {
    telegram::Update update;
    updates::HandledCallback on_handled;
    runtime::Permit pending;
  };

  static DispatcherOptions validate(DispatcherOptions options) {
    if (options.max_concurrent_updates == 0 || options.max_pending_updates == 0) {
      throw std::invalid_argument("DispatcherOptions: max_concurrent_updates and "
                                  "max_pending_updates must be at least 1");
    }
    if (options.max_pending_updates < options.max_concurrent_updates) {
      throw std::invalid_argument(
          "DispatcherOptions: max_pending_updates (" + std::to_string(options.max_pending_updates) +
          ") must be at least max_concurrent_updates (" +
          std::to_string(options.max_concurrent_updates) + ")");
    }
    return options;
  }

  boost::asio::awaitable<void> run_key(updates::OrderingKey key, Item first);
  boost::asio::awaitable<void> run_one(Item item);

  DispatcherOptions options_;
  UpdateHandler handler_;
  runtime::Semaphore pending_;
  runtime::Semaphore running_;
  std::shared_ptr<spdlog::logger> logger_;
  // Updates queued behind the running update of their key. A key has an
  // entry exactly while its task (run_key) runs.
  std::unordered_map<updates::OrderingKey, std::deque<Item>, KeyHash> queues_;
  // Declared last: destroyed first, while the members its tasks use live.
  runtime::TaskSet tasks_;
};

boost::asio::awaitable<void> Dispatcher::Impl::submit(telegram::Update update,
                                                      updates::HandledCallback on_handled) {
  runtime::Permit permit = co_await pending_.acquire();
  ++stats_.pending;
  const std::int64_t update_id = update.update_id;
  std::optional<updates::OrderingKey> key = updates::ordering_key_of(update);
  Item item{.update = std::move(update), .on_handled = std::move(on_handled), .pending = std::move(permit)};

  if (!key) {
    tasks_.spawn(task_name(key, update_id), run_one(std::move(item)));
    co_return;
  }
  auto [queue, inserted] = queues_.try_emplace(*key);
  if (!inserted) {
    queue->second.push_back(std::move(item));
    co_return;
  }
  stats_.active_keys = queues_.size();
  tasks_.spawn(task_name(key, update_id), run_key(*key, std::move(item)));
}

// Handles the updates of one key in order, then removes the key's queue.
boost::asio::awaitable<void> Dispatcher::Impl::run_key(updates::OrderingKey key, Item first) {
  std::optional<Item> current(std::move(first));
  try {
    while (current) {
      co_await run_one(std::move(*current));
      current.reset();
      auto queue = queues_.find(key);
      if (queue == queues_.end() || queue->second.empty()) {
        break;
      }
      current.emplace(std::move(queue->second.front()));
      queue->second.pop_front();
    }
  } catch (...) {
    // Cancelled by close(): the queued updates are dropped unhandled.
    if (auto queue = queues_.find(key); queue != queues_.end()) {
      stats_.pending -= queue->second.size();
      queues_.erase(queue);
    }
    stats_.active_keys = queues_.size();
    throw;
  }
  queues_.erase(key);
  stats_.active_keys = queues_.size();
}

boost::asio::awaitable<void> Dispatcher::Impl::run_one(Item item) {
  const std::int64_t update_id = item.update.update_id;
  std::optional<runtime::Permit> slot;
  try {
    slot.emplace(co_await running_.acquire());
  } catch (...) {
    --stats_.pending;
    throw;
  }
  ++stats_.running;
  stats_.max_running = std::max(stats_.max_running, stats_.running);

  std::exception_ptr error;
  try {
    co_await handler_(item.update);
  } catch (...) {
    error = std::current_exception();
  }
  bool handled = true;
  if (error) {
    // A coroutine cannot co_await inside a catch block, so the cancellation
    // state is read here.
    const auto state = co_await boost::asio::this_coro::cancellation_state;
    if (state.cancelled() != boost::asio::cancellation_type::none) {
      // Cancelled by close(): not handled, so not confirmed.
      handled = false;
    } else {
      ++stats_.failed_total;
      log_handler_error(*logger_, update_id, error);
    }
  }
  --stats_.running;
  --stats_.pending;
  slot.reset();
  item.pending.release();
  if (!handled) {
    co_return;
  }
  ++stats_.handled_total;
  if (item.on_handled) {
    item.on_handled(update_id);
  }
}

boost::asio::awaitable<void> Dispatcher::Impl::close(std::chrono::steady_clock::duration grace) {
  pending_.close();
  co_await tasks_.close(grace);
}

HandlerError::HandlerError(std::int64_t update_id, std::string handler_name, const std::string& error)
    : std::runtime_error("handler \"" + handler_name + "\" failed on update " +
                         std::to_string(update_id) + ": " + error),
      update_id_(update_id),
      handler_name_(std::move(handler_name)),
      error_(error) {}

Dispatcher::Dispatcher(boost::asio::any_io_executor executor, DispatcherOptions options,
                       UpdateHandler handler)
    : impl_(std::make_unique<Impl>(std::move(executor), options, std::move(handler))) {}

Dispatcher::~Dispatcher() = default;

boost::asio::awaitable<void> Dispatcher::submit(telegram::Update update,
                                                updates::HandledCallback on_handled) {
  return impl_->submit(std::move(update), std::move(on_handled));
}

boost::asio::awaitable<void> Dispatcher::close(std::chrono::steady_clock::duration grace) {
  return impl_->close(grace);
}

DispatcherStats Dispatcher::stats() const noexcept { return impl_->stats_; }

bool Dispatcher::has_room() const noexcept { return impl_->has_room(); }

}  // namespace sluice::dispatch
