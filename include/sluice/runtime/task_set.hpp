#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::runtime {

namespace detail {
class TaskSetState;
}  // namespace detail

/// Thrown by `TaskSet::spawn` after `close()`; names the set and the task.
class TaskSetClosed : public std::runtime_error {
 public:
  TaskSetClosed(std::string set_name, std::string task_name);

  const std::string& set_name() const noexcept { return set_name_; }
  const std::string& task_name() const noexcept { return task_name_; }

 private:
  std::string set_name_;
  std::string task_name_;
};

/// Owns background coroutines: keeps each task until it finishes, logs what
/// escapes it, and drains or cancels the rest at shutdown.
///
/// This is the only way sluice starts a task that no coroutine awaits (there
/// is no detached spawn). The caller of `spawn` holds no handle, because the
/// set keeps the task and removes it when it ends.
///
///     TaskSet background(io.get_executor(), "background");
///     background.spawn("refresh_cache", refresh_cache(db));
///     ...
///     co_await background.close(std::chrono::seconds(10));
///
/// Errors: an exception escaping a task is logged once, at error level, by
/// the logger "sluice.runtime" with `task_set=`, `task=` and `error=` fields,
/// and counted in `failed_total()`. It touches no other task. A task that
/// ends with `operation_aborted` after the set cancelled it counts as
/// cancelled and is logged at debug level only.
///
/// Executor: each task runs on the set's executor, wrapped in a
/// `NamedExecutor` that carries the task's name, so a stall monitor can
/// name the task that blocks the loop (see `RunningTaskName`).
///
/// Threads: not thread-safe. Call every member on the thread that runs the
/// executor; the counters may be read from any thread.
///
/// Lifetime rules:
/// - The set must outlive its tasks, and tasks must not use objects that die
///   before them. In a class, declare the set last (so it is destroyed
///   first) and `co_await close()` in the owner's asynchronous stop.
/// - The io_context must keep running until `close()` returns, since tasks
///   only make progress while it runs.
/// - Destroying a set that still has tasks does not crash and does not wait:
///   it closes the set and posts a terminal cancellation of every task to
///   the executor. The tasks unwind as the loop keeps running, and what
///   escapes them is still logged. Destroy the set before its io_context.
/// - If the io_context is destroyed with tasks pending, their coroutine
///   frames are destroyed without resuming. Such tasks count as cancelled
///   and are logged at warning level.
class TaskSet {
 public:
  explicit TaskSet(boost::asio::any_io_executor executor, std::string name = "tasks");
  ~TaskSet();
  TaskSet(const TaskSet&) = delete;
  TaskSet& operator=(const TaskSet&) = delete;

  /// Starts `task` under `name` and keeps it until it finishes.
  ///
  /// The task starts on a later turn of the loop (never inside this call).
  /// Throws `TaskSetClosed` after `close()` started, and
  /// `std::invalid_argument` if `task` is empty.
  void spawn(std::string name, boost::asio::awaitable<void> task);

  /// Waits until the set has no tasks. It does not close the set, so tasks
  /// spawned meanwhile are waited for too.
  ///
  /// Cancellation: cancelling the awaiting coroutine ends the wait with
  /// `operation_aborted` and leaves the tasks running.
  boost::asio::awaitable<void> join();

  /// Closes the set and drains it in stages. It rejects new spawns and
  /// waits up to `deadline` for the running tasks. Then it cancels the rest
  /// through their cancellation slots (terminal) and waits until all have
  /// unwound, so their destructors and cleanup have run.
  ///
  /// The last wait has no bound: a task that ignores cancellation (blocked
  /// in an operation without cancellation support) delays it. Every 5 s of
  /// that wait logs a warning naming the remaining tasks. Calling `close()`
  /// again, or on an empty set, returns once the set is empty.
  ///
  /// Cancellation: cancelling the awaiting coroutine stops the wait with
  /// `operation_aborted`; the set stays closed and tasks already cancelled
  /// keep unwinding.
  boost::asio::awaitable<void> close(std::chrono::steady_clock::duration deadline);

  /// Emits a terminal cancellation on every running task, without closing
  /// the set or waiting.
  void cancel_all();

  bool closed() const noexcept;
  const std::string& name() const noexcept;
  const boost::asio::any_io_executor& get_executor() const noexcept;

  /// Number of running tasks.
  std::size_t size() const noexcept;
  /// Tasks spawned since construction.
  std::uint64_t spawned_total() const noexcept;
  /// Tasks that returned normally.
  std::uint64_t completed_total() const noexcept;
  /// Tasks that ended with an exception (other than cancellation by the set).
  std::uint64_t failed_total() const noexcept;
  /// Tasks that ended by cancellation from the set, or were abandoned when
  /// the io_context was destroyed.
  std::uint64_t cancelled_total() const noexcept;

 private:
  std::shared_ptr<detail::TaskSetState> state_;
};

}  // namespace sluice::runtime
