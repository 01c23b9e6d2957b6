#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace sluice::runtime {

/// Errors with which `Semaphore::async_acquire` completes, besides
/// `boost::asio::error::operation_aborted` (the waiter was cancelled) and
/// `boost::asio::error::invalid_argument` (more permits requested than the
/// semaphore has).
enum class SemaphoreErrc {
  /// The semaphore was closed before or while the caller waited.
  closed = 1,
};

const boost::system::error_category& semaphore_category() noexcept;

inline boost::system::error_code make_error_code(SemaphoreErrc errc) noexcept {
  return {static_cast<int>(errc), semaphore_category()};
}

}  // namespace sluice::runtime

template <>
struct boost::system::is_error_code_enum<sluice::runtime::SemaphoreErrc> : std::true_type {};

namespace sluice::runtime {

class Permit;

namespace detail {

class SemaphoreState;

// A queued acquire request. Nodes are linked into the state's FIFO queue.
class SemaphoreWaiter {
 public:
  SemaphoreWaiter* previous = nullptr;
  SemaphoreWaiter* next = nullptr;
  std::size_t count = 0;

  // Removes the cancellation handler from the caller's slot. Called on every
  // path that completes the waiter except cancellation itself, because a
  // cancellation handler must not destroy itself while it runs.
  virtual void clear_cancellation() noexcept = 0;

  // Posts the caller's handler with the result and frees this node.
  virtual void complete(const boost::system::error_code& error, Permit permit) = 0;

  // Frees this node and the caller's handler without invoking it. Used
  // when the io_context shuts down, as Asio does for its own operations.
  virtual void destroy() noexcept = 0;

 protected:
  ~SemaphoreWaiter() = default;
};

class SemaphoreService;

// State shared by a Semaphore and its permits. Loop-affine: no locking.
// Reference-counted by hand (the Semaphore holds one reference, each
// non-empty Permit another) because every user runs on one thread.
class SemaphoreState {
 public:
  SemaphoreState(boost::asio::any_io_executor executor, std::size_t capacity, std::string name);
  ~SemaphoreState();
  SemaphoreState(const SemaphoreState&) = delete;
  SemaphoreState& operator=(const SemaphoreState&) = delete;

  void add_reference() noexcept { ++references_; }
  void remove_reference() noexcept;

  const boost::asio::any_io_executor& executor() const noexcept { return executor_; }
  const std::string& name() const noexcept { return name_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t available() const noexcept { return available_; }
  std::size_t waiters() const noexcept { return waiter_count_; }
  bool closed() const noexcept { return closed_; }

  // Takes `count` permits when no one waits and enough are free.
  bool try_take(std::size_t count) noexcept;
  Permit make_permit(std::size_t count) noexcept;

  void enqueue(SemaphoreWaiter* waiter) noexcept;
  void cancel(SemaphoreWaiter* waiter);
  void release(std::size_t count);
  void close();

  // Called by the service when the io_context shuts down: closes the
  // semaphore and destroys its waiters without completing them.
  void shut_down() noexcept;

 private:
  friend class SemaphoreService;

  void unlink(SemaphoreWaiter* waiter) noexcept;
  void grant_waiters();

  // Null once the service has shut down.
  SemaphoreService* service_;
  SemaphoreState* service_previous_ = nullptr;
  SemaphoreState* service_next_ = nullptr;

  boost::asio::any_io_executor executor_;
  std::string name_;
  std::size_t capacity_;
  std::size_t available_;
  std::size_t references_ = 1;
  std::size_t waiter_count_ = 0;
  SemaphoreWaiter* head_ = nullptr;
  SemaphoreWaiter* tail_ = nullptr;
  bool closed_ = false;
};

}  // namespace detail

/// Permits taken from a `Semaphore`; releases them when destroyed.
///
/// Move-only. An empty permit (default-constructed, moved-from or released)
/// releases nothing. A permit may outlive its `Semaphore`, but it must be
/// released or destroyed on the semaphore's loop thread.
class Permit {
 public:
  Permit() noexcept = default;
  Permit(Permit&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  Permit& operator=(Permit&& other) noexcept;
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  ~Permit() { release(); }

  /// Returns the permits to the semaphore now, handing them to the waiters
  /// at the head of its queue first. No effect on an empty permit.
  void release() noexcept;

  /// Number of permits held (0 when empty).
  std::size_t permits() const noexcept { return count_; }

  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  friend class detail::SemaphoreState;
  Permit(detail::SemaphoreState* state, std::size_t count) noexcept : state_(state), count_(count) {}

  detail::SemaphoreState* state_ = nullptr;
  std::size_t count_ = 0;
};

/// Thrown by `Semaphore::acquire` when the semaphore is closed.
/// `code()` is `SemaphoreErrc::closed`; `what()` names the semaphore.
class SemaphoreClosed : public boost::system::system_error {
 public:
  explicit SemaphoreClosed(const std::string& semaphore_name);
};

/// A fair, cancellation-safe counting semaphore with RAII permits, for
/// coroutines on one event loop.
///
/// Use it to cap concurrent work, for example in-flight Bot API requests:
///
///     Semaphore limit(executor, 30, "bot_api");
///     Permit permit = co_await limit.acquire();
///     co_await send(request);  // the permit returns when it goes out of scope
///
/// Ordering: waiters are served strictly in arrival order (FIFO). A release
/// with waiters hands the permits to the head waiter directly, so a later
/// `try_acquire()` or `acquire()` cannot take them first (no barging). A
/// multi-permit waiter at the head blocks smaller requests behind it.
///
/// Cancellation: a waiter cancelled through its cancellation slot (terminal,
/// partial or total) leaves the queue, takes no permit and completes with
/// `operation_aborted`. A waiter that was already granted receives its
/// permits inside the completion, as a `Permit`, so a result thrown away by
/// `operator||` or by a destroyed coroutine releases itself.
///
/// Executor and threads: completions are always posted, never invoked inside
/// `acquire` or `release`, to the handler's associated executor (by default
/// the semaphore's). Not thread-safe: create, use and destroy the semaphore
/// and its permits on the thread that runs its executor.
///
/// Lifetime: destroy the semaphore before its `io_context`. Destroying it
/// closes it (waiters complete with `SemaphoreErrc::closed`), and
/// outstanding permits stay valid. When the io_context shuts down, queued
/// waiters are destroyed without completing, like Asio's own pending
/// operations, so their coroutine frames are freed.
class Semaphore {
 public:
  /// Creates a semaphore with `permits` free permits. `name` appears in
  /// error messages.
  Semaphore(boost::asio::any_io_executor executor, std::size_t permits, std::string name = "semaphore");
  ~Semaphore();
  Semaphore(Semaphore&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Semaphore& operator=(Semaphore&&) = delete;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Waits for `count` permits, in FIFO order.
  ///
  /// Returns at once, without suspending, when no one waits and enough
  /// permits are free. Throws `SemaphoreClosed` if the semaphore is or
  /// becomes closed, `boost::system::system_error` with `operation_aborted`
  /// if the waiting coroutine is cancelled, and `std::invalid_argument` if
  /// `count` exceeds `capacity()`. `count == 0` returns an empty permit.
  boost::asio::awaitable<Permit> acquire(std::size_t count = 1);

  /// Takes `count` permits if no one waits and enough are free.
  std::optional<Permit> try_acquire(std::size_t count = 1);

  /// Generic form of `acquire` for any completion token, with completion
  /// signature `void(boost::system::error_code, Permit)`. Errors:
  /// `SemaphoreErrc::closed`, `boost::asio::error::operation_aborted`
  /// (cancelled), `boost::asio::error::invalid_argument` (`count` exceeds
  /// `capacity()`). The permit is empty whenever the error is set.
  template <typename CompletionToken>
  auto async_acquire(std::size_t count, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, Permit)>(
        Initiation{state_}, token, count);
  }

  template <typename CompletionToken>
  auto async_acquire(CompletionToken&& token) {
    return async_acquire(1, std::forward<CompletionToken>(token));
  }

  /// Rejects all future acquisitions and completes every waiter with
  /// `SemaphoreErrc::closed`. Permits already held stay valid. Idempotent.
  void close();

  /// Number of free permits.
  std::size_t available() const noexcept { return state_->available(); }
  /// Number of queued waiters.
  std::size_t waiters() const noexcept { return state_->waiters(); }
  /// Number of permits the semaphore was created with.
  std::size_t capacity() const noexcept { return state_->capacity(); }
  bool closed() const noexcept { return state_->closed(); }
  const std::string& name() const noexcept { return state_->name(); }
  const boost::asio::any_io_executor& get_executor() const noexcept { return state_->executor(); }

 private:
  template <typename Handler>
  class WaiterOperation;

  struct Initiation {
    detail::SemaphoreState* state;

    template <typename Handler>
    void operator()(Handler&& handler, std::size_t count) const;
  };

  detail::SemaphoreState* state_;
};

// Implementation details below.

template <typename Handler>
class Semaphore::WaiterOperation final : public detail::SemaphoreWaiter {
 public:
  using Executor = boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>;
  using Allocator = boost::asio::associated_allocator_t<Handler, boost::asio::recycling_allocator<void>>;
  using OwnAllocator = typename std::allocator_traits<Allocator>::template rebind_alloc<WaiterOperation>;

  // Allocates an operation with the handler's associated allocator.
  static WaiterOperation* create(Handler handler, detail::SemaphoreState* state) {
    OwnAllocator allocator(boost::asio::get_associated_allocator(handler, boost::asio::recycling_allocator<void>()));
    WaiterOperation* memory = std::allocator_traits<OwnAllocator>::allocate(allocator, 1);
    try {
      return ::new (static_cast<void*>(memory)) WaiterOperation(std::move(handler), state);
    } catch (...) {
      std::allocator_traits<OwnAllocator>::deallocate(allocator, memory, 1);
      throw;
    }
  }

  // Posts a result to a handler that never queued.
  static void post_result(Handler handler, const boost::asio::any_io_executor& fallback,
                          const boost::system::error_code& error, Permit permit) {
    Executor executor = boost::asio::get_associated_executor(handler, fallback);
    boost::asio::post(executor, Delivery{std::move(handler), error, std::move(permit)});
  }

  void install_cancellation() {
    slot_ = boost::asio::get_associated_cancellation_slot(handler_);
    if (slot_.is_connected()) {
      slot_.template emplace<CancellationHandler>(state_, this);
    }
  }

  void clear_cancellation() noexcept override {
    if (slot_.is_connected()) {
      slot_.clear();
    }
  }

  void destroy() noexcept override {
    OwnAllocator allocator(boost::asio::get_associated_allocator(handler_, boost::asio::recycling_allocator<void>()));
    this->~WaiterOperation();
    std::allocator_traits<OwnAllocator>::deallocate(allocator, this, 1);
  }

  void complete(const boost::system::error_code& error, Permit permit) override {
    // Free this node before the handler can run, so that its memory can be
    // reused by the next operation the handler starts.
    OwnAllocator allocator(boost::asio::get_associated_allocator(handler_, boost::asio::recycling_allocator<void>()));
    Handler handler(std::move(handler_));
    boost::asio::executor_work_guard<Executor> work(std::move(work_));
    this->~WaiterOperation();
    std::allocator_traits<OwnAllocator>::deallocate(allocator, this, 1);
    boost::asio::post(work.get_executor(), Delivery{std::move(handler), error, std::move(permit)});
  }

 private:
  struct Delivery {
    Handler handler;
    boost::system::error_code error;
    Permit permit;

    void operator()() { std::move(handler)(error, std::move(permit)); }
  };

  // Installed in the caller's cancellation slot while the waiter is queued.
  // It disarms itself when it runs because it stays in the slot afterwards.
  struct CancellationHandler {
    detail::SemaphoreState* state;
    detail::SemaphoreWaiter* waiter;

    void operator()(boost::asio::cancellation_type_t type) {
      using boost::asio::cancellation_type;
      if (waiter == nullptr ||
          (type & (cancellation_type::terminal | cancellation_type::partial | cancellation_type::total)) ==
              cancellation_type::none) {
        return;
      }
      state->cancel(std::exchange(waiter, nullptr));
    }
  };

  WaiterOperation(Handler&& handler, detail::SemaphoreState* state)
      : handler_(std::move(handler)),
        work_(boost::asio::get_associated_executor(handler_, state->executor())),
        state_(state) {}

  Handler handler_;
  boost::asio::executor_work_guard<Executor> work_;
  detail::SemaphoreState* state_;
  boost::asio::cancellation_slot slot_;
};

template <typename Handler>
void Semaphore::Initiation::operator()(Handler&& handler, std::size_t count) const {
  using Operation = WaiterOperation<std::decay_t<Handler>>;

  if (state->closed()) {
    Operation::post_result(std::forward<Handler>(handler), state->executor(), SemaphoreErrc::closed, Permit());
    return;
  }
  if (count > state->capacity()) {
    Operation::post_result(std::forward<Handler>(handler), state->executor(),
                           boost::asio::error::invalid_argument, Permit());
    return;
  }
  if (state->try_take(count)) {
    Operation::post_result(std::forward<Handler>(handler), state->executor(), {}, state->make_permit(count));
    return;
  }

  Operation* operation = Operation::create(std::forward<Handler>(handler), state);
  operation->count = count;
  state->enqueue(operation);
  operation->install_cancellation();
}

}  // namespace sluice::runtime
