#include <sluice/runtime/task_set.hpp>

#include <atomic>
#include <exception>
#include <list>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>

#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/task_name.hpp>

namespace sluice::runtime {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using JoinHandler = asio::any_completion_handler<void(boost::system::error_code)>;

// While close() waits for cancelled tasks to unwind, it reports the ones
// still running this often: often enough for someone watching a shutdown,
// rarely enough not to flood the log.
constexpr auto kStragglerReportInterval = std::chrono::seconds(5);

// A straggler report names at most this many tasks, to keep the line short.
constexpr std::size_t kStragglerNamesReported = 10;

// Counters have one writer (the loop thread) and readers on any thread, so
// a relaxed load and store is enough and cheaper than fetch_add.
void increment(std::atomic<std::uint64_t>& counter) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

TaskSetClosed::TaskSetClosed(std::string set_name, std::string task_name)
    : std::runtime_error(fmt::format("task set `{}` is closed: cannot spawn task `{}`", set_name, task_name)),
      set_name_(std::move(set_name)),
      task_name_(std::move(task_name)) {}

namespace detail {

// One running task. Owned by the task's completion handler, and kept alive
// by every copy of the task's NamedExecutor, which shares the name.
struct TaskEntry : std::enable_shared_from_this<TaskEntry> {
  explicit TaskEntry(std::string task_name) : name(std::move(task_name)), started(Clock::now()) {}

  std::string name;
  asio::cancellation_signal signal;
  Clock::time_point started;
  TaskEntry* previous = nullptr;
  TaskEntry* next = nullptr;
  bool cancel_requested = false;
};

class TaskSetState {
 public:
  TaskSetState(asio::any_io_executor executor, std::string name)
      : executor_(std::move(executor)), name_(std::move(name)), logger_(module_logger("sluice.runtime")) {}

  const asio::any_io_executor& executor() const noexcept { return executor_; }
  const std::string& name() const noexcept { return name_; }
  bool closed() const noexcept { return closed_; }
  void close() noexcept { closed_ = true; }
  bool empty() const noexcept { return head_ == nullptr; }
  spdlog::logger& logger() const noexcept { return *logger_; }

  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  std::uint64_t spawned_total() const noexcept { return spawned_total_.load(std::memory_order_relaxed); }
  std::uint64_t completed_total() const noexcept { return completed_total_.load(std::memory_order_relaxed); }
  std::uint64_t failed_total() const noexcept { return failed_total_.load(std::memory_order_relaxed); }
  std::uint64_t cancelled_total() const noexcept { return cancelled_total_.load(std::memory_order_relaxed); }

  void link(TaskEntry* entry) {
    if (head_ == nullptr) {
      work_ = asio::prefer(executor_, asio::execution::outstanding_work.tracked);
    }
    entry->previous = tail_;
    if (tail_ != nullptr) {
      tail_->next = entry;
    } else {
      head_ = entry;
    }
    tail_ = entry;
    size_.store(size() + 1, std::memory_order_relaxed);
    increment(spawned_total_);
  }

  // Records how a task ended and removes it. `abandoned` means its frame
  // was destroyed without completing (the io_context went away).
  void finish(TaskEntry& entry, const std::exception_ptr& error, bool abandoned) {
    // The task's cancellation state lives in the entry's slot. Copies of
    // the task's executor may keep the entry alive after the task, so the
    // state is freed now, because the finished task no longer uses it.
    entry.signal.slot().clear();
    unlink(&entry);
    if (abandoned) {
      increment(cancelled_total_);
      logger_->warn("task abandoned before it finished: task_set={} task={} elapsed_s={:.3f}", name_, entry.name,
                    seconds_since(entry.started));
    } else if (!error) {
      increment(completed_total_);
    } else {
      record_failure(entry, error);
    }

    if (head_ == nullptr) {
      complete_join_waiters();
    }
  }

  void cancel_all() {
    // Emitting a signal may run other code; keep every entry alive and the
    // iteration independent of the list while doing it.
    std::vector<std::shared_ptr<TaskEntry>> entries;
    entries.reserve(size());
    for (TaskEntry* entry = head_; entry != nullptr; entry = entry->next) {
      entries.push_back(entry->shared_from_this());
    }
    for (const auto& entry : entries) {
      entry->cancel_requested = true;
      entry->signal.emit(asio::cancellation_type::terminal);
    }
  }

  void add_join_waiter(JoinHandler handler) {
    if (head_ == nullptr) {
      post_result(std::move(handler), {});
      return;
    }
    std::uint64_t id = next_waiter_id_++;
    asio::cancellation_slot slot = handler.get_cancellation_slot();
    join_waiters_.push_back(JoinWaiter{id, std::move(handler), slot});
    if (slot.is_connected()) {
      slot.emplace<JoinCancellation>(this, id);
    }
  }

  void log_stragglers() const {
    std::string tasks;
    std::size_t listed = 0;
    for (TaskEntry* entry = head_; entry != nullptr && listed < kStragglerNamesReported; entry = entry->next) {
      tasks += fmt::format("{}{} ({:.1f} s)", listed == 0 ? "" : ", ", entry->name, seconds_since(entry->started));
      ++listed;
    }
    logger_->warn("close is waiting for cancelled tasks to unwind: task_set={} running={} tasks=[{}{}]", name_,
                  size(), tasks, size() > listed ? ", ..." : "");
  }

 private:
  struct JoinWaiter {
    std::uint64_t id;
    JoinHandler handler;
    asio::cancellation_slot slot;
  };

  // Installed in a join waiter's cancellation slot. It disarms itself when
  // it runs because it stays in the slot afterwards.
  struct JoinCancellation {
    TaskSetState* state;
    std::uint64_t id;

    void operator()(asio::cancellation_type_t type) {
      if (state == nullptr || (type & asio::cancellation_type::terminal) == asio::cancellation_type::none) {
        return;
      }
      std::exchange(state, nullptr)->cancel_join_waiter(id);
    }
  };

  void unlink(TaskEntry* entry) noexcept {
    if (entry->previous != nullptr) {
      entry->previous->next = entry->next;
    } else {
      head_ = entry->next;
    }
    if (entry->next != nullptr) {
      entry->next->previous = entry->previous;
    } else {
      tail_ = entry->previous;
    }
    entry->previous = nullptr;
    entry->next = nullptr;
    size_.store(size() - 1, std::memory_order_relaxed);
    if (head_ == nullptr) {
      work_ = asio::any_io_executor();
    }
  }

  void record_failure(const TaskEntry& entry, const std::exception_ptr& error) {
    std::string what;
    bool aborted = false;
    try {
      std::rethrow_exception(error);
    } catch (const boost::system::system_error& failure) {
      aborted = failure.code() == asio::error::operation_aborted;
      what = failure.what();
    } catch (const std::exception& failure) {
      what = failure.what();
    } catch (...) {
      what = "unknown exception (not derived from std::exception)";
    }

    if (aborted && entry.cancel_requested) {
      increment(cancelled_total_);
      logger_->debug("task cancelled: task_set={} task={} elapsed_s={:.3f}", name_, entry.name,
                     seconds_since(entry.started));
      return;
    }
    increment(failed_total_);
    logger_->error("task failed: task_set={} task={} elapsed_s={:.3f} error={}", name_, entry.name,
                   seconds_since(entry.started), what);
  }

  void cancel_join_waiter(std::uint64_t id) {
    for (auto it = join_waiters_.begin(); it != join_waiters_.end(); ++it) {
      if (it->id == id) {
        JoinHandler handler = std::move(it->handler);
        join_waiters_.erase(it);
        post_result(std::move(handler), asio::error::operation_aborted);
        return;
      }
    }
  }

  void complete_join_waiters() {
    std::list<JoinWaiter> waiters = std::move(join_waiters_);
    join_waiters_.clear();
    for (JoinWaiter& waiter : waiters) {
      if (waiter.slot.is_connected()) {
        waiter.slot.clear();
      }
      post_result(std::move(waiter.handler), {});
    }
  }

  void post_result(JoinHandler handler, boost::system::error_code error) {
    // post() runs the handler on its associated executor, if it has one.
    asio::post(executor_, asio::append(std::move(handler), error));
  }

  asio::any_io_executor executor_;
  // Keeps the io_context's run() from returning while the set has tasks,
  // also while they all wait on something that is not an I/O operation.
  asio::any_io_executor work_;
  std::string name_;
  std::shared_ptr<spdlog::logger> logger_;
  bool closed_ = false;
  TaskEntry* head_ = nullptr;
  TaskEntry* tail_ = nullptr;
  std::list<JoinWaiter> join_waiters_;
  std::uint64_t next_waiter_id_ = 0;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> spawned_total_{0};
  std::atomic<std::uint64_t> completed_total_{0};
  std::atomic<std::uint64_t> failed_total_{0};
  std::atomic<std::uint64_t> cancelled_total_{0};
};

}  // namespace detail

namespace {

// Reports the end of one task to its set when invoked, or from its
// destructor if the io_context destroys it first. It owns the task's entry
// and gives it up when invoked, so the destructor then reports nothing.
class TaskCompletion {
 public:
  TaskCompletion(std::shared_ptr<detail::TaskSetState> state, std::shared_ptr<detail::TaskEntry> entry) noexcept
      : state_(std::move(state)), entry_(std::move(entry)) {}
  TaskCompletion(TaskCompletion&&) noexcept = default;
  TaskCompletion& operator=(TaskCompletion&&) = delete;
  TaskCompletion(const TaskCompletion&) = delete;
  TaskCompletion& operator=(const TaskCompletion&) = delete;

  ~TaskCompletion() {
    if (entry_) {
      state_->finish(*entry_, nullptr, /*abandoned=*/true);
    }
  }

  void operator()(std::exception_ptr error) {
    std::shared_ptr<detail::TaskEntry> entry = std::move(entry_);
    state_->finish(*entry, error, /*abandoned=*/false);
  }

 private:
  std::shared_ptr<detail::TaskSetState> state_;
  std::shared_ptr<detail::TaskEntry> entry_;
};

using TaskThreadEntry = asio::awaitable<asio::detail::awaitable_thread_entry_point, asio::any_io_executor>;

// Runs a task as the bottom frame of its coroutine stack and reports how it
// ended. If the frame is destroyed before the task ends (the
// io_context went away), `completion` reports the task as abandoned from its
// destructor.
TaskThreadEntry run_task(asio::awaitable<void> task, TaskCompletion completion) {
  std::exception_ptr error;
  try {
    co_await std::move(task);
  } catch (...) {
    error = std::current_exception();
  }
  completion(error);
}

// Starts `task` on a later turn of the loop, on `executor`, cancellable
// through `slot`.
//
// This does what co_spawn does, with less work. co_spawn adds work guards (the
// set keeps one for all its tasks), a post after a task that ends without
// suspending, a dispatch of the completion handler and a second
// cancellation signal. Together they doubled the cost of a short task.
// NOTE: awaitable_thread is an Asio implementation detail (Boost 1.81); a
// Boost upgrade must recheck this function or go back to co_spawn.
template <typename Executor>
void launch_task(Executor executor, asio::awaitable<void> task, TaskCompletion completion,
                 asio::cancellation_slot slot) {
  TaskThreadEntry entry = run_task(std::move(task), std::move(completion));
  asio::detail::awaitable_thread<asio::any_io_executor> thread(std::move(entry), asio::any_io_executor(executor), slot,
                                                              asio::cancellation_state(slot));
  auto start = [thread = std::move(thread)]() mutable { thread.launch(); };
  asio::post(executor, std::move(start));
}

struct WaitEmptyInitiation {
  std::shared_ptr<detail::TaskSetState> state;

  template <typename Handler>
  void operator()(Handler&& handler) const {
    state->add_join_waiter(JoinHandler(std::forward<Handler>(handler)));
  }
};

// Completes with success once the set is empty.
template <typename CompletionToken>
auto async_wait_empty(std::shared_ptr<detail::TaskSetState> state, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(boost::system::error_code)>(WaitEmptyInitiation{std::move(state)},
                                                                               token);
}

asio::awaitable<void> throw_if_cancelled() {
  asio::cancellation_state cancellation = co_await asio::this_coro::cancellation_state;
  if (cancellation.cancelled() != asio::cancellation_type::none) {
    throw boost::system::system_error(asio::error::operation_aborted);
  }
}

// Waits until the set is empty or `limit` passes; returns whether it is empty.
asio::awaitable<bool> wait_empty_for(std::shared_ptr<detail::TaskSetState> state, Clock::duration limit) {
  if (state->empty()) {
    co_return true;
  }
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, limit);
  auto wait_empty = async_wait_empty(state, asio::deferred);
  auto wait_timer = timer.async_wait(asio::deferred);
  auto group = asio::experimental::make_parallel_group(std::move(wait_empty), std::move(wait_timer));
  auto condition = asio::experimental::wait_for_one();
  auto [order, empty_error, timer_error] = co_await group.async_wait(condition, asio::use_awaitable);

  // The group also ends when the awaiting coroutine is cancelled; that is
  // not a timeout.
  co_await throw_if_cancelled();
  co_return !empty_error;
}

asio::awaitable<void> join_state(std::shared_ptr<detail::TaskSetState> state) {
  if (state->empty()) {
    co_return;
  }
  co_await async_wait_empty(state, asio::use_awaitable);
}

asio::awaitable<void> close_state(std::shared_ptr<detail::TaskSetState> state, Clock::duration deadline) {
  state->close();
  bool drained = co_await wait_empty_for(state, deadline);
  if (drained) {
    co_return;
  }

  state->logger().info("close deadline passed, cancelling tasks: task_set={} running={} deadline_ms={}",
                       state->name(), state->size(),
                       std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count());
  state->cancel_all();
  for (;;) {
    bool unwound = co_await wait_empty_for(state, kStragglerReportInterval);
    if (unwound) {
      break;
    }
    state->log_stragglers();
  }
}

using IoExecutor = asio::io_context::executor_type;

// Returns the io_context executor inside `executor`, looking through one
// NamedExecutor (a TaskSet created inside a task), or null.
const IoExecutor* concrete_io_executor(const asio::any_io_executor& executor) {
  if (const auto* io_executor = executor.target<IoExecutor>()) {
    return io_executor;
  }
  if (const auto* named = executor.target<NamedExecutor<IoExecutor>>()) {
    return &named->inner_executor();
  }
  return nullptr;
}

}  // namespace

TaskSet::TaskSet(asio::any_io_executor executor, std::string name)
    : state_(std::make_shared<detail::TaskSetState>(std::move(executor), std::move(name))) {}

TaskSet::~TaskSet() {
  state_->close();
  if (state_->empty()) {
    return;
  }
  state_->logger().warn("task set destroyed with running tasks, cancelling them: task_set={} running={}",
                        state_->name(), state_->size());
  asio::post(state_->executor(), [state = state_] { state->cancel_all(); });
}

void TaskSet::spawn(std::string name, asio::awaitable<void> task) {
  if (!task.valid()) {
    throw std::invalid_argument(
        fmt::format("task set `{}`: task `{}` has no coroutine (moved-from awaitable)", state_->name(), name));
  }
  if (state_->closed()) {
    throw TaskSetClosed(state_->name(), std::move(name));
  }

  auto entry = std::make_shared<detail::TaskEntry>(std::move(name));
  std::shared_ptr<const std::string> task_name(entry, &entry->name);
  asio::cancellation_slot slot = entry->signal.slot();
  state_->link(entry.get());
  TaskCompletion completion(state_, std::move(entry));

  // A NamedExecutor around the concrete io_context executor fits in
  // any_io_executor's small buffer. One around an any_io_executor does not,
  // so every copy of the coroutine's executor (Asio makes several per
  // resumption) would allocate.
  if (const IoExecutor* io_executor = concrete_io_executor(state_->executor())) {
    launch_task(NamedExecutor<IoExecutor>(*io_executor, std::move(task_name)), std::move(task), std::move(completion),
                slot);
  } else {
    launch_task(NamedExecutor<asio::any_io_executor>(state_->executor(), std::move(task_name)), std::move(task),
                std::move(completion), slot);
  }
}

asio::awaitable<void> TaskSet::join() {
  return join_state(state_);
}

asio::awaitable<void> TaskSet::close(std::chrono::steady_clock::duration deadline) {
  return close_state(state_, deadline);
}

void TaskSet::cancel_all() {
  state_->cancel_all();
}

bool TaskSet::closed() const noexcept {
  return state_->closed();
}

const std::string& TaskSet::name() const noexcept {
  return state_->name();
}

const asio::any_io_executor& TaskSet::get_executor() const noexcept {
  return state_->executor();
}

std::size_t TaskSet::size() const noexcept {
  return state_->size();
}

std::uint64_t TaskSet::spawned_total() const noexcept {
  return state_->spawned_total();
}

std::uint64_t TaskSet::completed_total() const noexcept {
  return state_->completed_total();
}

std::uint64_t TaskSet::failed_total() const noexcept {
  return state_->failed_total();
}

std::uint64_t TaskSet::cancelled_total() const noexcept {
  return state_->cancelled_total();
}

}  // namespace sluice::runtime
