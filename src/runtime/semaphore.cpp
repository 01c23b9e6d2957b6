#include <sluice/runtime/semaphore.hpp>

#include <mutex>
#include <stdexcept>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace sluice::runtime {
namespace {

// boost::system::error_category has a protected non-virtual destructor by
// design (categories are never deleted through the base), which g++'s
// -Wnon-virtual-dtor still reports.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class SemaphoreCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sluice.semaphore"; }

  std::string message(int value) const override {
    switch (static_cast<SemaphoreErrc>(value)) {
      case SemaphoreErrc::closed:
        return "semaphore closed";
    }
    return "unknown semaphore error " + std::to_string(value);
  }
};
#pragma GCC diagnostic pop

// Holds a reference on a semaphore's state for the lifetime of the object.
class StateReference {
 public:
  explicit StateReference(detail::SemaphoreState* state) noexcept : state_(state) { state_->add_reference(); }
  ~StateReference() { state_->remove_reference(); }
  StateReference(const StateReference&) = delete;
  StateReference& operator=(const StateReference&) = delete;

  detail::SemaphoreState* get() const noexcept { return state_; }

 private:
  detail::SemaphoreState* state_;
};

}  // namespace

const boost::system::error_category& semaphore_category() noexcept {
  static const SemaphoreCategory category;
  return category;
}

SemaphoreClosed::SemaphoreClosed(const std::string& semaphore_name)
    : boost::system::system_error(SemaphoreErrc::closed,
                                  fmt::format("semaphore `{}` is closed; no more permits are granted", semaphore_name)) {}

namespace detail {

// Tracks the semaphores of one execution context, so that its shutdown can
// destroy the waiters it does not know about: their handlers (coroutine
// frames) live in the semaphores' queues, not in Asio's.
class SemaphoreService final : public boost::asio::execution_context::service {
 public:
  static boost::asio::execution_context::id id;

  explicit SemaphoreService(boost::asio::execution_context& context)
      : boost::asio::execution_context::service(context) {}

  void add(SemaphoreState* state) {
    std::lock_guard lock(mutex_);
    state->service_next_ = head_;
    if (head_ != nullptr) {
      head_->service_previous_ = state;
    }
    head_ = state;
  }

  void remove(SemaphoreState* state) {
    std::lock_guard lock(mutex_);
    if (state->service_previous_ != nullptr) {
      state->service_previous_->service_next_ = state->service_next_;
    } else {
      head_ = state->service_next_;
    }
    if (state->service_next_ != nullptr) {
      state->service_next_->service_previous_ = state->service_previous_;
    }
  }

 private:
  void shutdown() override {
    std::vector<SemaphoreState*> states;
    {
      std::lock_guard lock(mutex_);
      for (SemaphoreState* state = head_; state != nullptr; state = state->service_next_) {
        state->service_ = nullptr;
        states.push_back(state);
      }
      head_ = nullptr;
    }
    // Keep every state alive while the waiters are destroyed, because a
    // destroyed frame may drop the last permit of another semaphore.
    for (SemaphoreState* state : states) {
      state->add_reference();
    }
    for (SemaphoreState* state : states) {
      state->shut_down();
    }
    for (SemaphoreState* state : states) {
      state->remove_reference();
    }
  }

  std::mutex mutex_;
  SemaphoreState* head_ = nullptr;
};

boost::asio::execution_context::id SemaphoreService::id;

SemaphoreState::SemaphoreState(boost::asio::any_io_executor executor, std::size_t capacity, std::string name)
    : service_(&boost::asio::use_service<SemaphoreService>(boost::asio::query(executor, boost::asio::execution::context))),
      executor_(std::move(executor)),
      name_(std::move(name)),
      capacity_(capacity),
      available_(capacity) {
  service_->add(this);
}

SemaphoreState::~SemaphoreState() {
  if (service_ != nullptr) {
    service_->remove(this);
  }
}

void SemaphoreState::shut_down() noexcept {
  closed_ = true;
  std::vector<SemaphoreWaiter*> waiters;
  while (head_ != nullptr) {
    SemaphoreWaiter* waiter = head_;
    unlink(waiter);
    waiter->clear_cancellation();
    waiters.push_back(waiter);
  }
  for (SemaphoreWaiter* waiter : waiters) {
    waiter->destroy();
  }
}

void SemaphoreState::remove_reference() noexcept {
  if (--references_ == 0) {
    delete this;
  }
}

bool SemaphoreState::try_take(std::size_t count) noexcept {
  if (closed_ || head_ != nullptr || available_ < count) {
    return false;
  }
  available_ -= count;
  return true;
}

Permit SemaphoreState::make_permit(std::size_t count) noexcept {
  if (count == 0) {
    return Permit();
  }
  add_reference();
  return Permit(this, count);
}

void SemaphoreState::enqueue(SemaphoreWaiter* waiter) noexcept {
  waiter->previous = tail_;
  waiter->next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = waiter;
  } else {
    head_ = waiter;
  }
  tail_ = waiter;
  ++waiter_count_;
}

void SemaphoreState::unlink(SemaphoreWaiter* waiter) noexcept {
  if (waiter->previous != nullptr) {
    waiter->previous->next = waiter->next;
  } else {
    head_ = waiter->next;
  }
  if (waiter->next != nullptr) {
    waiter->next->previous = waiter->previous;
  } else {
    tail_ = waiter->previous;
  }
  waiter->previous = nullptr;
  waiter->next = nullptr;
  --waiter_count_;
}

void SemaphoreState::cancel(SemaphoreWaiter* waiter) {
  bool was_head = waiter == head_;
  unlink(waiter);
  waiter->complete(boost::asio::error::operation_aborted, Permit());

  // A large request at the head may have been blocking smaller ones that
  // the free permits already satisfy.
  if (was_head) {
    grant_waiters();
  }
}

void SemaphoreState::release(std::size_t count) {
  available_ += count;
  grant_waiters();
}

void SemaphoreState::grant_waiters() {
  // Every completion is posted, so no handler runs inside this loop and the
  // queue cannot change under it.
  while (head_ != nullptr && head_->count <= available_) {
    SemaphoreWaiter* waiter = head_;
    unlink(waiter);
    available_ -= waiter->count;
    waiter->clear_cancellation();
    waiter->complete({}, make_permit(waiter->count));
  }
}

void SemaphoreState::close() {
  closed_ = true;
  while (head_ != nullptr) {
    SemaphoreWaiter* waiter = head_;
    unlink(waiter);
    waiter->clear_cancellation();
    waiter->complete(SemaphoreErrc::closed, Permit());
  }
}

}  // namespace detail

Permit& Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    release();
    state_ = std::exchange(other.state_, nullptr);
    count_ = std::exchange(other.count_, 0);
  }
  return *this;
}

void Permit::release() noexcept {
  detail::SemaphoreState* state = std::exchange(state_, nullptr);
  std::size_t count = std::exchange(count_, 0);
  if (state == nullptr) {
    return;
  }
  // NOTE: posting a completion can throw std::bad_alloc; a destructor cannot
  // report it, so it terminates, as for any other noexcept destructor.
  state->release(count);
  state->remove_reference();
}

Semaphore::Semaphore(boost::asio::any_io_executor executor, std::size_t permits, std::string name)
    : state_(new detail::SemaphoreState(std::move(executor), permits, std::move(name))) {}

Semaphore::~Semaphore() {
  if (state_ == nullptr) {
    return;
  }
  state_->close();
  state_->remove_reference();
}

boost::asio::awaitable<Permit> Semaphore::acquire(std::size_t count) {
  if (count > state_->capacity()) {
    throw std::invalid_argument(fmt::format("semaphore `{}`: requested {} permits but its capacity is {}",
                                            state_->name(), count, state_->capacity()));
  }
  if (state_->closed()) {
    throw SemaphoreClosed(state_->name());
  }
  if (state_->try_take(count)) {
    co_return state_->make_permit(count);
  }

  // The semaphore may be destroyed while this coroutine waits, so keep the
  // state (and its name, for the error message) alive until it resumes.
  StateReference state(state_);
  auto token = boost::asio::as_tuple(boost::asio::use_awaitable);
  auto [error, permit] = co_await async_acquire(count, token);
  if (error == SemaphoreErrc::closed) {
    throw SemaphoreClosed(state.get()->name());
  }
  if (error) {
    throw boost::system::system_error(error, fmt::format("semaphore `{}`: acquire failed", state.get()->name()));
  }
  co_return std::move(permit);
}

std::optional<Permit> Semaphore::try_acquire(std::size_t count) {
  if (!state_->try_take(count)) {
    return std::nullopt;
  }
  return state_->make_permit(count);
}

void Semaphore::close() {
  state_->close();
}

}  // namespace sluice::runtime
