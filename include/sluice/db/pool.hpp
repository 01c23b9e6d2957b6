#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/logger.h>

#include <sluice/db/detail/pool_logic.hpp>
#include <sluice/db/errors.hpp>
#include <sluice/db/pool_options.hpp>
#include <sluice/db/pool_stats.hpp>
#include <sluice/db/return_state.hpp>

namespace sluice::db {

using Clock = std::chrono::steady_clock;

/// What `Pool` needs from a database driver. All members are called on the
/// pool's executor (the event loop).
///
/// - `connect(deadline)` opens a connection or throws (ConnectError).
/// - `ping(conn, deadline)` makes one round trip or throws.
/// - `reset(conn, mode, deadline)` makes a returned connection reusable. It
///   cancels and drains a statement in flight, then rolls back or commits an
///   open transaction (mode), and throws if that fails.
/// - `return_state(conn)` reports the state of a returned connection; cheap.
/// - `close(conn)` closes without blocking the loop (it may hand the work to
///   another thread).
/// - `kPings` is false for drivers whose connections cannot go stale
///   (embedded databases): they are never pinged.
template <class D>
concept PoolDriver = requires(D& driver, typename D::Connection& conn, Clock::time_point deadline,
                              ResetOnReturn mode, std::unique_ptr<typename D::Connection> owned) {
  { driver.connect(deadline) } -> std::same_as<boost::asio::awaitable<std::unique_ptr<typename D::Connection>>>;
  { driver.ping(conn, deadline) } -> std::same_as<boost::asio::awaitable<void>>;
  { driver.reset(conn, mode, deadline) } -> std::same_as<boost::asio::awaitable<void>>;
  { driver.return_state(conn) } -> std::same_as<ReturnState>;
  { driver.close(std::move(owned)) } -> std::same_as<void>;
  { D::kPings } -> std::convertible_to<bool>;
};

namespace detail {

/// Bookkeeping a pool keeps per open connection, apart from the connection.
struct EntryBase : boost::intrusive::list_base_hook<> {
  ConnectionTimes times;
  Clock::time_point acquired_at;
  std::source_location acquired_site;
  bool invalidated_by_holder = false;
#ifndef NDEBUG
  // The holding task's cancellation slot identifies the task (coroutine
  // thread) for the double-acquire warning.
  boost::asio::cancellation_slot holder_task;
  boost::intrusive::list_member_hook<> in_use_hook;
#endif
};

/// The part of a pool's shared state that handles need without knowing the
/// driver: a reference count and the way back.
class PoolCoreBase {
 public:
  PoolCoreBase() = default;
  PoolCoreBase(const PoolCoreBase&) = delete;
  PoolCoreBase& operator=(const PoolCoreBase&) = delete;

  // Not atomic: every reference is taken and dropped on the pool's executor.
  void add_ref() noexcept { ++refs_; }
  void release_ref() noexcept {
    if (--refs_ == 0) {
      delete this;
    }
  }

  /// Takes back a connection its holder has finished with.
  virtual void return_entry(EntryBase* entry) noexcept = 0;

 protected:
  virtual ~PoolCoreBase() = default;

 private:
  std::size_t refs_ = 1;
};

template <class Driver>
class PoolCore;

/// One open connection of a Pool<Driver> and its bookkeeping.
template <class Driver>
struct PoolEntry : EntryBase {
  std::unique_ptr<typename Driver::Connection> conn;
};

}  // namespace detail

/// A connection checked out of a `Pool`: move-only, and returns the connection
/// to the pool when destroyed, reset or assigned over, also during stack
/// unwinding or when its coroutine is cancelled or destroyed. A connection
/// returned in a transaction is rolled back (reset_on_return), one returned
/// with a statement in flight is cancelled and drained in the background.
///
/// Lifetimes: must be destroyed on the pool's executor. It keeps the pool's
/// shared state alive, so it may outlive the `Pool` object (the connection is
/// then closed on return).
template <class Driver>
class PooledConnection {
 public:
  using Connection = typename Driver::Connection;

  PooledConnection() noexcept = default;
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  PooledConnection(PooledConnection&& other) noexcept
      : core_(std::exchange(other.core_, nullptr)), entry_(std::exchange(other.entry_, nullptr)) {}
  PooledConnection& operator=(PooledConnection&& other) noexcept {
    if (this != &other) {
      reset();
      core_ = std::exchange(other.core_, nullptr);
      entry_ = std::exchange(other.entry_, nullptr);
    }
    return *this;
  }
  ~PooledConnection() { reset(); }

  Connection* get() const noexcept { return entry_ ? entry_->conn.get() : nullptr; }
  Connection* operator->() const noexcept { return get(); }
  Connection& operator*() const noexcept { return *get(); }
  explicit operator bool() const noexcept { return entry_ != nullptr; }

  /// Marks the connection unusable: it is closed instead of reused on return.
  void invalidate() noexcept {
    if (entry_) {
      entry_->invalidated_by_holder = true;
    }
  }

  /// Returns the connection to the pool now; the handle becomes empty.
  void reset() noexcept {
    if (entry_ == nullptr) {
      return;
    }
    auto* core = std::exchange(core_, nullptr);
    core->return_entry(std::exchange(entry_, nullptr));
    core->release_ref();
  }

  /// Gives up ownership to a type-erased handle (db::ConnectionHandle). The
  /// caller must later pass both pointers to `core->return_entry(entry)` and
  /// `core->release_ref()`.
  std::pair<detail::PoolCoreBase*, detail::EntryBase*> release_to_erased() noexcept {
    return {std::exchange(core_, nullptr), std::exchange(entry_, nullptr)};
  }

 private:
  friend class detail::PoolCore<Driver>;

  PooledConnection(detail::PoolCoreBase* core, detail::PoolEntry<Driver>* entry) noexcept
      : core_(core), entry_(entry) {
    core_->add_ref();
  }

  detail::PoolCoreBase* core_ = nullptr;
  detail::PoolEntry<Driver>* entry_ = nullptr;
};

namespace detail {

/// Returns the module logger ("sluice.db"); defined in the db library.
const std::shared_ptr<spdlog::logger>& db_logger();

/// Returns a uniform number in [0, 1) from a per-thread generator; used for
/// jitter only.
double jitter_uniform() noexcept;

/// Logs the double-acquire warning (debug builds).
void warn_second_acquire(const std::string& pool, const std::source_location& held,
                         const std::source_location& acquiring);

/// Logs a hold longer than hold_warning_threshold, at most once per second.
void warn_long_hold(const std::string& pool, std::chrono::nanoseconds held, const std::source_location& site,
                    Clock::time_point now);

/// The shared state of one Pool<Driver>: lists in step with the PoolLogic
/// counters, plus the background tasks the pool owns (connects, clean-ups,
/// retry timers, maintenance). Lives until the Pool, every handle and every
/// background task have let go of it.
template <class Driver>
class PoolCore final : public PoolCoreBase {
 public:
  using Connection = typename Driver::Connection;
  using Handle = PooledConnection<Driver>;

  using Entry = PoolEntry<Driver>;

  // A caller waiting in acquire(); lives in the acquire() coroutine frame.
  struct Waiter : boost::intrusive::list_base_hook<> {
    Waiter(const boost::asio::any_io_executor& executor, Clock::time_point deadline)
        : timer(executor, deadline) {}
    boost::asio::steady_timer timer;
    Entry* entry = nullptr;
    bool fresh = false;
    std::exception_ptr error;
  };

  // A background task the pool owns; cancelled by close().
  struct TaskNode : boost::intrusive::list_base_hook<> {
    explicit TaskNode(const char* task_name) : name(task_name) {}
    boost::asio::cancellation_signal signal;
    const char* name;
  };

  PoolCore(boost::asio::any_io_executor executor, Driver driver, PoolOptions options)
      : executor_(std::move(executor)),
        driver_(std::move(driver)),
        logic_(options),
        drain_timer_(executor_, Clock::time_point::max()) {}

  ~PoolCore() override {
    // Normally empty by now; this covers an io_context destroyed with tasks
    // still pending.
    while (!idle_.empty()) {
      auto& entry = idle_.front();
      idle_.pop_front();
      close_entry(&entry);
    }
  }

  const PoolOptions& options() const noexcept { return logic_.options(); }
  const std::string& name() const noexcept { return logic_.options().name; }

  // --- acquire -------------------------------------------------------------

  /// Holds a connection taken for a checkout until it is handed out; closes
  /// it if the acquire() frame is destroyed first.
  struct InUseGuard {
    PoolCore* core;
    Entry* entry;
    InUseGuard(PoolCore* c, Entry* e) noexcept : core(c), entry(e) {}
    InUseGuard(const InUseGuard&) = delete;
    InUseGuard& operator=(const InUseGuard&) = delete;
    ~InUseGuard() {
      if (entry != nullptr) {
        core->discard_in_use(entry, CheckoutVerdict::invalidated);
      }
    }
    Entry* release() noexcept { return std::exchange(entry, nullptr); }
  };

  /// Unlinks a waiter whose acquire() frame ends, returning a connection that
  /// was handed to it but never taken.
  struct WaiterGuard {
    PoolCore* core;
    Waiter* waiter;
    WaiterGuard(PoolCore* c, Waiter* w) noexcept : core(c), waiter(w) {}
    WaiterGuard(const WaiterGuard&) = delete;
    WaiterGuard& operator=(const WaiterGuard&) = delete;
    ~WaiterGuard() {
      if (waiter->is_linked()) {
        core->waiters_.erase(core->waiters_.iterator_to(*waiter));
        core->logic_.waiter_left();
      }
      if (waiter->entry != nullptr) {
        core->return_entry(std::exchange(waiter->entry, nullptr));
      }
    }
  };

  // Queues the caller and waits until a connection is handed to it (the
  // entry and whether it was opened for this caller), or throws.
  static boost::asio::awaitable<std::pair<Entry*, bool>> wait_in_queue(PoolCore* core, Clock::time_point now,
                                                                        Clock::time_point start,
                                                                        Clock::time_point limit) {
    Waiter waiter(core->executor_, limit);
    core->waiters_.push_back(waiter);
    WaiterGuard guard(core, &waiter);
    // co_spawn starts a task inline when called on its executor, so a
    // connect that completes without suspending has already handed its
    // connection over (or failed the waiter) here, and cancelled a timer
    // that nothing waited on yet.
    core->start_connects(now);

    boost::system::error_code ec;
    if (waiter.entry == nullptr && !waiter.error) {
      auto token = boost::asio::redirect_error(boost::asio::use_awaitable, ec);
      co_await waiter.timer.async_wait(token);
    }

    if (waiter.entry != nullptr) {
      Entry* entry = std::exchange(waiter.entry, nullptr);
      co_return std::make_pair(entry, waiter.fresh);
    }
    if (waiter.error) {
      std::rethrow_exception(waiter.error);
    }
    if (ec == boost::asio::error::operation_aborted) {
      // Cancelled by the caller: the guard unlinks the waiter.
      throw boost::system::system_error(boost::asio::error::operation_aborted);
    }
    // The message counts this caller among the waiters.
    core->logic_.count_timeout();
    auto message = core->logic_.timeout_message(limit - start);
    core->waiters_.erase(core->waiters_.iterator_to(waiter));
    core->logic_.waiter_left();
    throw PoolTimeoutError(message);
  }

  static boost::asio::awaitable<Handle> acquire(PoolCore* core, std::optional<Clock::time_point> deadline,
                                                std::source_location site) {
    // The coroutine holds a reference so that the pool state outlives it.
    core->add_ref();
    struct Ref {
      PoolCore* core;
      ~Ref() { core->release_ref(); }
    } ref{core};

    const auto start = Clock::now();
    auto limit = start + core->options().pool_timeout;
    if (deadline && *deadline < limit) {
      limit = *deadline;
    }
    boost::asio::cancellation_slot task;
#ifndef NDEBUG
    const auto task_state = co_await boost::asio::this_coro::cancellation_state;
    task = task_state.slot();
    core->check_second_acquire(task, site);
#endif

    // Reading the clock costs about 25 ns on the benchmark machine, as much as
    // the rest of an idle checkout, so the fast path reads it once.
    auto now = start;
    for (;;) {
      const auto action = core->logic_.begin_acquire(now);
      InUseGuard held{core, nullptr};
      bool fresh = false;

      switch (action) {
        case AcquireAction::take_idle:
          held.entry = core->pop_idle();
          break;
        case AcquireAction::reject_closed:
          throw PoolClosedError(core->logic_.closed_message());
        case AcquireAction::reject_exhausted:
          throw PoolExhaustedError(core->logic_.exhausted_message());
        case AcquireAction::reject_connect_failing:
          throw ConnectError(core->logic_.connect_failing_message(now, core->last_connect_error_));
        case AcquireAction::wait: {
          auto handed = co_await wait_in_queue(core, now, start, limit);
          held.entry = handed.first;
          fresh = handed.second;
          now = Clock::now();
          break;
        }
      }

      held.entry->times.fresh = fresh;
      const auto verdict = core->logic_.check_connection(held.entry->times, now, Driver::kPings);
      if (verdict == CheckoutVerdict::recycle || verdict == CheckoutVerdict::invalidated) {
        core->discard_in_use(held.release(), verdict);
        now = Clock::now();
        continue;
      }
      if (verdict == CheckoutVerdict::ping) {
        bool alive = false;
        try {
          co_await core->driver_.ping(*held.entry->conn, limit);
          alive = true;
        } catch (const std::exception& e) {
          core->logger_->debug("pre-ping failed pool={} error=\"{}\"", core->name(), e.what());
        }
        const auto state = co_await boost::asio::this_coro::cancellation_state;
        if (state.cancelled() != boost::asio::cancellation_type::none) {
          core->discard_in_use(held.release(), CheckoutVerdict::invalidated);
          throw boost::system::system_error(boost::asio::error::operation_aborted);
        }
        now = Clock::now();
        if (!alive) {
          core->ping_failed(held.release(), now);
          continue;
        }
        core->logic_.ping_succeeded();
      }

      core->logic_.record_wait(now - start);
      core->logic_.count_acquired();
      co_return core->hand_out(held.release(), now, site, task);
    }
  }

  std::optional<Handle> try_acquire(std::source_location site) {
    for (;;) {
      if (logic_.idle() == 0 || logic_.closed()) {
        return std::nullopt;
      }
      const auto now = Clock::now();
      logic_.begin_acquire(now);
      Entry* entry = pop_idle();
      entry->times.fresh = false;
      const auto verdict = logic_.check_connection(entry->times, now, Driver::kPings);
      if (verdict == CheckoutVerdict::use) {
        logic_.record_wait(std::chrono::nanoseconds{0});
        logic_.count_acquired();
        return hand_out(entry, now, site, {});
      }
      if (verdict == CheckoutVerdict::ping) {
        // A ping needs I/O: leave the connection where it was.
        logic_.untake_idle();
        if (options().pool_use_lifo) {
          idle_.push_back(*entry);
        } else {
          idle_.push_front(*entry);
        }
        return std::nullopt;
      }
      discard_in_use(entry, verdict);
    }
  }

  // --- return --------------------------------------------------------------

  void return_entry(EntryBase* base) noexcept override {
    auto* entry = static_cast<Entry*>(base);
    const auto now = Clock::now();
    const auto held = now - entry->acquired_at;
    logic_.record_hold(held);
    if (logic_.hold_exceeded(held)) {
      warn_long_hold(name(), held, entry->acquired_site, now);
    }
#ifndef NDEBUG
    if (entry->in_use_hook.is_linked()) {
      in_use_.erase(in_use_.iterator_to(static_cast<EntryBase&>(*entry)));
    }
#endif
    const auto state = entry->invalidated_by_holder ? ReturnState::broken : driver_.return_state(*entry->conn);
    const auto placement = logic_.on_return(state, entry->times, now);
    if (state == ReturnState::disconnected) {
      close_invalidated_idle();
    }
    place(entry, placement, now);
  }

  // --- shutdown ------------------------------------------------------------

  /// Stops the pool without waiting: fails waiters, closes idle connections,
  /// cancels background tasks. Connections in use are closed on return.
  void shut_down() noexcept {
    if (logic_.closed()) {
      return;
    }
    logic_.close();
    fail_waiters(std::make_exception_ptr(PoolClosedError(logic_.closed_message())));
    while (!idle_.empty()) {
      auto& entry = idle_.front();
      idle_.pop_front();
      logic_.idle_closed(MaintenanceVerdict::close_idle);
      close_entry(&entry);
    }
    for (auto& task : tasks_) {
      task.signal.emit(boost::asio::cancellation_type::terminal);
    }
  }

  static boost::asio::awaitable<void> close(PoolCore* core) {
    core->add_ref();
    struct Ref {
      PoolCore* core;
      ~Ref() { core->release_ref(); }
    } ref{core};

    core->shut_down();
    while (!core->tasks_.empty()) {
      boost::system::error_code ec;
      auto token = boost::asio::redirect_error(boost::asio::use_awaitable, ec);
      co_await core->drain_timer_.async_wait(token);
      if (ec == boost::asio::error::operation_aborted && !core->tasks_.empty()) {
        const auto state = co_await boost::asio::this_coro::cancellation_state;
        if (state.cancelled() != boost::asio::cancellation_type::none) {
          throw boost::system::system_error(boost::asio::error::operation_aborted);
        }
      }
    }
  }

  PoolStats stats() const {
    PoolStats stats = logic_.stats();
    stats.background_tasks = task_count_;
    return stats;
  }

  void invalidate_all() {
    logic_.invalidate(Clock::now());
    close_invalidated_idle();
  }

  Driver& driver() noexcept { return driver_; }

  /// Starts the maintenance task if an option needs it.
  void start_maintenance() {
    const auto& o = options();
    if (o.idle_timeout.count() > 0 || o.keepalive_interval.count() > 0 || o.pool_recycle.count() >= 0) {
      spawn("sluice.db.pool.maintenance", maintain(this));
    }
  }

 private:
  Entry* pop_idle() noexcept {
    Entry* entry = nullptr;
    if (options().pool_use_lifo) {
      entry = &idle_.back();
      idle_.pop_back();
    } else {
      entry = &idle_.front();
      idle_.pop_front();
    }
    return entry;
  }

  Handle hand_out(Entry* entry, Clock::time_point now, const std::source_location& site,
                  const boost::asio::cancellation_slot& task) {
    entry->acquired_at = now;
    entry->acquired_site = site;
    entry->invalidated_by_holder = false;
#ifndef NDEBUG
    entry->holder_task = task;
    in_use_.push_back(static_cast<EntryBase&>(*entry));
#else
    (void)task;
#endif
    return Handle(this, entry);
  }

#ifndef NDEBUG
  void check_second_acquire(const boost::asio::cancellation_slot& task, const std::source_location& site) {
    if (!task.is_connected()) {
      return;
    }
    for (const auto& entry : in_use_) {
      if (entry.holder_task == task) {
        warn_second_acquire(name(), entry.acquired_site, site);
        return;
      }
    }
  }
#endif

  void place(Entry* entry, Placement placement, Clock::time_point now) {
    switch (placement) {
      case Placement::hand_to_waiter:
        entry->times.last_used = now;
        hand_to_waiter(entry, false);
        return;
      case Placement::keep_idle:
        entry->times.last_used = now;
        idle_.push_back(*entry);
        return;
      case Placement::close:
        close_entry(entry);
        start_connects(now);
        return;
      case Placement::clean_up:
        spawn("sluice.db.pool.cleanup", clean_up(this, entry));
        return;
    }
  }

  void hand_to_waiter(Entry* entry, bool fresh) {
    // Set now in case the waiter's frame is destroyed before it resumes and
    // returns the connection unused.
    entry->acquired_at = Clock::now();
    auto& waiter = waiters_.front();
    waiters_.pop_front();
    waiter.entry = entry;
    waiter.fresh = fresh;
    waiter.timer.cancel();
  }

  void fail_waiters(const std::exception_ptr& error) {
    while (!waiters_.empty()) {
      auto& waiter = waiters_.front();
      waiters_.pop_front();
      logic_.waiter_left();
      waiter.error = error;
      waiter.timer.cancel();
    }
  }

  void discard_in_use(Entry* entry, CheckoutVerdict why) noexcept {
    logic_.discard_in_use(why);
    close_entry(entry);
    start_connects(Clock::now());
  }

  // A checkout's pre-ping failed: the server probably restarted, so every
  // connection opened before now is closed (idle ones at once, the others
  // on return) and the caller gets a new one.
  void ping_failed(Entry* entry, Clock::time_point now) noexcept {
    logic_.ping_failed(now);
    logic_.discard_in_use(CheckoutVerdict::invalidated);
    close_entry(entry);
    close_invalidated_idle();
    logger_->warn("pre-ping failed, closing every connection opened before it pool={} {}", name(),
                  logic_.describe_counters());
    start_connects(now);
  }

  void close_invalidated_idle() noexcept {
    const auto before = logic_.invalidated_before();
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (it->times.created_at < before) {
        auto& entry = *it;
        it = idle_.erase(it);
        logic_.idle_closed(MaintenanceVerdict::close_invalidated);
        close_entry(&entry);
      } else {
        ++it;
      }
    }
  }

  void close_entry(Entry* entry) noexcept {
    try {
      driver_.close(std::move(entry->conn));
    } catch (const std::exception& e) {
      logger_->warn("close failed pool={} error=\"{}\"", name(), e.what());
    }
    delete entry;
  }

  void start_connects(Clock::time_point now) noexcept {
    const auto count = logic_.connects_to_start(now);
    for (std::size_t i = 0; i < count; ++i) {
      spawn("sluice.db.pool.connect", connect(this));
    }
  }

  // --- background tasks ----------------------------------------------------

  // Completion handler of a background task: owns the task's node and a
  // reference to the pool state, and finishes the node even if the handler
  // is destroyed without being called (io_context destroyed).
  struct TaskDone {
    PoolCore* core;
    TaskNode* node;

    TaskDone(PoolCore* c, TaskNode* n) noexcept : core(c), node(n) { core->add_ref(); }
    TaskDone(const TaskDone&) = delete;
    TaskDone& operator=(const TaskDone&) = delete;
    TaskDone(TaskDone&& other) noexcept
        : core(std::exchange(other.core, nullptr)), node(std::exchange(other.node, nullptr)) {}
    TaskDone& operator=(TaskDone&&) = delete;
    ~TaskDone() {
      if (node != nullptr) {
        core->task_finished(node, nullptr);
      }
      if (core != nullptr) {
        core->release_ref();
      }
    }
    void operator()(std::exception_ptr error) {
      core->task_finished(std::exchange(node, nullptr), error);
    }
  };

  void spawn(const char* task_name, boost::asio::awaitable<void> task) noexcept {
    try {
      auto* node = new TaskNode(task_name);
      tasks_.push_back(*node);
      ++task_count_;
      auto slot = node->signal.slot();
      boost::asio::co_spawn(executor_, std::move(task),
                            boost::asio::bind_cancellation_slot(slot, TaskDone(this, node)));
    } catch (const std::exception& e) {
      logger_->error("cannot start background task pool={} task={} error=\"{}\"", name(), task_name, e.what());
    }
  }

  void task_finished(TaskNode* node, std::exception_ptr error) noexcept {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const boost::system::system_error& e) {
        if (e.code() != boost::asio::error::operation_aborted) {
          logger_->error("background task failed pool={} task={} error=\"{}\"", name(), node->name, e.what());
        }
      } catch (const std::exception& e) {
        logger_->error("background task failed pool={} task={} error=\"{}\"", name(), node->name, e.what());
      } catch (...) {
        logger_->error("background task failed pool={} task={} error=unknown", name(), node->name);
      }
    }
    tasks_.erase(tasks_.iterator_to(*node));
    --task_count_;
    delete node;
    if (tasks_.empty()) {
      drain_timer_.cancel();
    }
  }

  static boost::asio::awaitable<void> connect(PoolCore* core) {
    const auto start = Clock::now();
    std::unique_ptr<Connection> conn;
    std::string error;
    try {
      conn = co_await core->driver_.connect(start + core->options().connect_timeout);
    } catch (const std::exception& e) {
      error = e.what();
    }
    core->connected(std::move(conn), std::move(error), start);
  }

  void connected(std::unique_ptr<Connection> conn, std::string error, Clock::time_point start) {
    const auto now = Clock::now();
    if (conn) {
      auto* entry = new Entry;
      entry->conn = std::move(conn);
      entry->times.created_at = now;
      entry->times.last_used = now;
      entry->times.expires_at = logic_.expiry_for(now, jitter_uniform());
      const auto placement = logic_.connect_succeeded(now - start);
      if (placement == Placement::hand_to_waiter) {
        hand_to_waiter(entry, true);
      } else {
        place(entry, placement, now);
      }
      start_connects(now);
      return;
    }

    if (logic_.closed()) {
      logic_.connect_failed(now, 0.0);
      return;
    }
    last_connect_error_ = std::move(error);
    const auto failure = logic_.connect_failed(now, jitter_uniform());
    logger_->warn("connect failed pool={} error=\"{}\"", name(), last_connect_error_);
    if (failure.fail_waiters) {
      fail_waiters(std::make_exception_ptr(ConnectError(logic_.connect_failing_message(now, last_connect_error_))));
      return;
    }
    spawn("sluice.db.pool.retry", retry_after(this, failure.retry_at));
  }

  static boost::asio::awaitable<void> retry_after(PoolCore* core, Clock::time_point when) {
    boost::asio::steady_timer timer(core->executor_, when);
    boost::system::error_code ec;
    auto token = boost::asio::redirect_error(boost::asio::use_awaitable, ec);
    co_await timer.async_wait(token);
    core->logic_.retry_due();
    if (!ec) {
      core->start_connects(Clock::now());
    }
  }

  // Owns a connection being cleaned; closes it if the task frame is
  // destroyed before the clean-up finishes.
  struct CleaningGuard {
    PoolCore* core;
    Entry* entry;
    CleaningGuard(PoolCore* c, Entry* e) noexcept : core(c), entry(e) {}
    CleaningGuard(const CleaningGuard&) = delete;
    CleaningGuard& operator=(const CleaningGuard&) = delete;
    ~CleaningGuard() {
      if (entry != nullptr) {
        core->logic_.cleanup_finished(false, entry->times, Clock::now());
        core->close_entry(entry);
      }
    }
  };

  static boost::asio::awaitable<void> clean_up(PoolCore* core, Entry* entry) {
    CleaningGuard guard{core, entry};
    bool clean = false;
    try {
      const auto deadline = Clock::now() + core->options().cleanup_timeout;
      co_await core->driver_.reset(*entry->conn, core->options().reset_on_return, deadline);
      clean = core->driver_.return_state(*entry->conn) == ReturnState::clean;
    } catch (const std::exception& e) {
      core->logger_->warn("clean-up of a returned connection failed pool={} error=\"{}\"", core->name(),
                          e.what());
    }
    const auto now = Clock::now();
    const auto placement = core->logic_.cleanup_finished(clean, entry->times, now);
    guard.entry = nullptr;
    core->place(entry, placement, now);
  }

  std::chrono::milliseconds maintenance_period() const {
    using std::chrono::milliseconds;
    auto period = milliseconds{1'000};
    for (auto limit : {options().idle_timeout, options().keepalive_interval, options().pool_recycle}) {
      if (limit.count() > 0) {
        period = std::min(period, limit / 2);
      }
    }
    return std::max(period, milliseconds{10});
  }

  static boost::asio::awaitable<void> maintain(PoolCore* core) {
    boost::asio::steady_timer timer(core->executor_);
    for (;;) {
      timer.expires_after(core->maintenance_period());
      co_await timer.async_wait(boost::asio::use_awaitable);
      if (core->logic_.closed()) {
        co_return;
      }
      co_await core->maintain_once();
    }
  }

  boost::asio::awaitable<void> maintain_once() {
    const auto now = Clock::now();
    // Closes first, then at most one ping per pass, taken from the front
    // (the connection idle longest under FIFO order).
    Entry* to_ping = nullptr;
    for (auto it = idle_.begin(); it != idle_.end();) {
      const auto verdict = logic_.check_idle(it->times, now, Driver::kPings);
      if (verdict == MaintenanceVerdict::keep || (verdict == MaintenanceVerdict::ping && to_ping != nullptr)) {
        ++it;
        continue;
      }
      auto& entry = *it;
      it = idle_.erase(it);
      if (verdict == MaintenanceVerdict::ping) {
        logic_.idle_taken_for_maintenance();
        to_ping = &entry;
        continue;
      }
      logic_.idle_closed(verdict);
      close_entry(&entry);
    }
    if (to_ping == nullptr) {
      co_return;
    }

    InUseGuard held{this, to_ping};
    bool alive = false;
    try {
      co_await driver_.ping(*to_ping->conn, now + options().connect_timeout);
      alive = true;
    } catch (const std::exception& e) {
      logger_->info("keepalive ping failed pool={} error=\"{}\"", name(), e.what());
    }
    const auto done = Clock::now();
    held.release();
    if (!alive && logic_.closed()) {
      logic_.maintenance_ping_done(true, done);
      close_entry(to_ping);
      co_return;
    }
    const auto placement = logic_.maintenance_ping_done(alive, done);
    if (!alive) {
      close_invalidated_idle();
    }
    if (placement == Placement::hand_to_waiter) {
      to_ping->times.last_used = done;
      hand_to_waiter(to_ping, false);
    } else {
      place(to_ping, placement, done);
    }
  }

  using WaiterList = boost::intrusive::list<Waiter, boost::intrusive::constant_time_size<false>>;
  using IdleList = boost::intrusive::list<Entry, boost::intrusive::base_hook<boost::intrusive::list_base_hook<>>,
                                          boost::intrusive::constant_time_size<false>>;
  using TaskList = boost::intrusive::list<TaskNode, boost::intrusive::constant_time_size<false>>;
#ifndef NDEBUG
  using InUseList = boost::intrusive::list<
      EntryBase,
      boost::intrusive::member_hook<EntryBase, decltype(EntryBase::in_use_hook), &EntryBase::in_use_hook>,
      boost::intrusive::constant_time_size<false>>;
  InUseList in_use_;
#endif

  boost::asio::any_io_executor executor_;
  Driver driver_;
  PoolLogic logic_;
  std::shared_ptr<spdlog::logger> logger_ = db_logger();
  IdleList idle_;
  WaiterList waiters_;
  TaskList tasks_;
  std::size_t task_count_ = 0;
  boost::asio::steady_timer drain_timer_;
  std::string last_connect_error_;
};

}  // namespace detail

/// A connection pool with SQLAlchemy's QueuePool semantics (see PoolOptions)
/// over any `PoolDriver`: PostgreSQL, SQLite, or a test driver.
///
/// Thread safety: none. Construct, use, and destroy the pool, its handles,
/// and the coroutines that await it on one executor (the event loop). Destroy
/// it before its io_context.
///
/// Lifetimes: the pool state lives until the Pool, every handle and every
/// background task have let go of it; destroying the Pool shuts it down
/// (waiters fail with PoolClosedError, idle connections close, background
/// tasks are cancelled) without waiting. `co_await close()` also waits for
/// the background tasks.
template <PoolDriver Driver>
class Pool {
 public:
  using Connection = typename Driver::Connection;
  using Handle = PooledConnection<Driver>;

  Pool(boost::asio::any_io_executor executor, Driver driver, PoolOptions options = {})
      : core_(new detail::PoolCore<Driver>(std::move(executor), std::move(driver), std::move(options))) {
    core_->start_maintenance();
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  Pool(Pool&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  Pool& operator=(Pool&&) = delete;
  ~Pool() {
    if (core_ != nullptr) {
      core_->shut_down();
      core_->release_ref();
    }
  }

  /// Checks out a connection: an idle one if any (checked against
  /// pool_recycle, and pinged under pool_pre_ping), else waits in FIFO order
  /// for a returned or newly opened one.
  ///
  /// Errors: PoolTimeoutError after pool_timeout or at `deadline`, whichever
  /// comes first; PoolExhaustedError at once when max_waiters callers wait;
  /// ConnectError at once while connects keep failing; PoolClosedError.
  /// Cancellation: any cancellation type; a cancelled caller takes no
  /// connection and loses none (operation_aborted). The handle is move-only
  /// RAII, so a handle discarded by `a || b` goes back to the pool.
  /// Executor: the pool's; the caller must run on it.
  /// `site` names the caller in hold-time and double-acquire warnings.
  boost::asio::awaitable<Handle> acquire(std::optional<Clock::time_point> deadline = std::nullopt,
                                         std::source_location site = std::source_location::current()) {
    return detail::PoolCore<Driver>::acquire(core_, deadline, site);
  }

  /// Checks out an idle connection that needs no I/O (no ping due), or
  /// returns nullopt at once.
  std::optional<Handle> try_acquire(std::source_location site = std::source_location::current()) {
    return core_->try_acquire(site);
  }

  /// Shuts the pool down and waits for its background tasks (connects,
  /// clean-ups) to finish. New acquire() calls fail with PoolClosedError;
  /// connections in use are closed when returned.
  boost::asio::awaitable<void> close() { return detail::PoolCore<Driver>::close(core_); }

  /// Closes every idle connection now and every other one on return, as a
  /// failed pre-ping does (SQLAlchemy's dispose()).
  void invalidate_all() { core_->invalidate_all(); }

  PoolStats stats() const { return core_->stats(); }
  const PoolOptions& options() const noexcept { return core_->options(); }
  const std::string& name() const noexcept { return core_->name(); }
  Driver& driver() noexcept { return core_->driver(); }

 private:
  detail::PoolCore<Driver>* core_;
};

}  // namespace sluice::db
