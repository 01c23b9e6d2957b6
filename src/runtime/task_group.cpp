#include <sluice/runtime/task_group.hpp>

#include <stdexcept>
#include <string>

#include <boost/asio/append.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>

#include <sluice/runtime/logging.hpp>

namespace sluice::runtime::detail {
namespace {

namespace asio = boost::asio;

bool is_operation_aborted(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const boost::system::system_error& failure) {
    return failure.code() == asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& failure) {
    return failure.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

// The completion handler of one child's co_spawn. It keeps the child's slot
// until the child ends and reports the end exactly once: when invoked, or
// from its destructor if the io_context destroys it without invoking it.
class ChildCompletion {
 public:
  ChildCompletion(std::shared_ptr<BoundedGroup> group, std::size_t index, Permit slot) noexcept
      : group_(std::move(group)), index_(index), slot_(std::move(slot)) {}
  ChildCompletion(ChildCompletion&&) noexcept = default;
  ChildCompletion& operator=(ChildCompletion&&) = delete;
  ChildCompletion(const ChildCompletion&) = delete;
  ChildCompletion& operator=(const ChildCompletion&) = delete;

  ~ChildCompletion() {
    if (group_) {
      group_->child_finished(index_, nullptr);
    }
  }

  void operator()(std::exception_ptr error) {
    std::shared_ptr<BoundedGroup> group = std::move(group_);
    group->child_finished(index_, error);
    slot_.release();
  }

 private:
  std::shared_ptr<BoundedGroup> group_;
  std::size_t index_;
  Permit slot_;
};

}  // namespace

// Installed in the producer's cancellation slot while it waits for the
// children: cancelling the producer stops the group, and the wait goes on
// until the children have unwound. It disarms itself after running because
// it stays in the slot.
struct BoundedGroup::IdleCancellation {
  BoundedGroup* group;

  void operator()(asio::cancellation_type_t type) {
    if (group == nullptr || type == asio::cancellation_type::none) {
      return;
    }
    std::exchange(group, nullptr)->stop();
  }
};

struct BoundedGroup::WaitIdleInitiation {
  BoundedGroup* group;

  template <typename Handler>
  void operator()(Handler&& handler) const {
    group->add_idle_waiter(asio::any_completion_handler<void(boost::system::error_code)>(std::forward<Handler>(handler)));
  }
};

void check_limit(std::size_t limit) {
  if (limit == 0) {
    throw std::invalid_argument("bounded task group: limit must be at least 1, got 0");
  }
}

BoundedGroup::BoundedGroup(asio::any_io_executor executor, std::size_t limit)
    : executor_(executor), slots_(std::move(executor), limit, "bounded_group") {}

void BoundedGroup::spawn(asio::awaitable<void> child, Permit slot) {
  std::size_t index = 0;
  if (!free_children_.empty()) {
    index = free_children_.back();
    free_children_.pop_back();
  } else {
    index = children_.size();
    children_.emplace_back();
  }
  Child& record = children_[index];
  record.running = true;
  ++in_flight_;
  asio::co_spawn(executor_, std::move(child),
                 asio::bind_cancellation_slot(record.signal.slot(),
                                              ChildCompletion(shared_from_this(), index, std::move(slot))));
}

void BoundedGroup::record_error(std::exception_ptr error) {
  if (first_error_) {
    module_logger("sluice.runtime")
        ->debug("bounded group: dropping an error after the first one: error={}", describe(error));
    return;
  }
  first_error_ = std::move(error);
  stop();
}

void BoundedGroup::stop() {
  if (stopping_) {
    return;
  }
  stopping_ = true;
  slots_.close();

  // Emitting may run other code; index the children instead of holding
  // references into the deque across the calls.
  for (std::size_t index = 0; index < children_.size(); ++index) {
    if (children_[index].running) {
      children_[index].signal.emit(asio::cancellation_type::terminal);
    }
  }
}

void BoundedGroup::child_finished(std::size_t index, const std::exception_ptr& error) {
  // Free the cancellation handler co_spawn left in the slot now rather
  // than when the slot is reused; the child's frame no longer uses it.
  children_[index].signal.slot().clear();
  children_[index].running = false;
  free_children_.push_back(index);
  --in_flight_;

  // A child that ends with operation_aborted after the group stopped was
  // cancelled by the group; anything else is an error of its own.
  if (error && !(stopping_ && is_operation_aborted(error))) {
    record_error(error);
  }

  if (in_flight_ == 0 && idle_waiter_) {
    auto handler = std::move(*idle_waiter_);
    idle_waiter_.reset();
    if (idle_waiter_slot_.is_connected()) {
      idle_waiter_slot_.clear();
    }
    asio::post(executor_, asio::append(std::move(handler), boost::system::error_code()));
  }
}

void BoundedGroup::add_idle_waiter(asio::any_completion_handler<void(boost::system::error_code)> handler) {
  if (in_flight_ == 0) {
    asio::post(executor_, asio::append(std::move(handler), boost::system::error_code()));
    return;
  }
  idle_waiter_slot_ = handler.get_cancellation_slot();
  idle_waiter_.emplace(std::move(handler));
  if (idle_waiter_slot_.is_connected()) {
    idle_waiter_slot_.emplace<IdleCancellation>(this);
  }
}

asio::awaitable<void> BoundedGroup::wait_idle() {
  if (in_flight_ == 0) {
    co_return;
  }
  auto token = asio::as_tuple(asio::use_awaitable);
  WaitIdleInitiation initiation{this};
  co_await asio::async_initiate<decltype(token), void(boost::system::error_code)>(initiation, token);
}

void BoundedGroup::rethrow_outcome(bool cancelled) const {
  if (first_error_) {
    std::rethrow_exception(first_error_);
  }
  if (cancelled) {
    throw boost::system::system_error(asio::error::operation_aborted, "bounded task group cancelled");
  }
}

}  // namespace sluice::runtime::detail
