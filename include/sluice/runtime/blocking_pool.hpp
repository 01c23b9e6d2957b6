#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sluice::runtime {

class BlockingPool;

/// Thrown by `offload()` when the pool no longer accepts work because
/// `join()` has been called.
class BlockingPoolClosedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

/// One unit of work queued on a `BlockingPool`. A job is claimed exactly
/// once: by a pool thread, which runs it, or by a cancellation of its awaiter
/// while it is still queued, which drops it.
class BlockingJob {
 public:
  virtual ~BlockingJob() = default;

  /// Runs the user's function. Pool thread only, after `claim_for_run()`.
  virtual void execute() noexcept = 0;
  /// Hands the result to the awaiter's executor. Pool thread only, after
  /// `execute()`.
  virtual void deliver() noexcept = 0;

  bool claim_for_run() noexcept { return claim(State::kRunning); }
  bool claim_for_cancel() noexcept { return claim(State::kCancelled); }

 private:
  enum class State { kQueued, kRunning, kCancelled };

  bool claim(State next) noexcept {
    State expected = State::kQueued;
    return state_.compare_exchange_strong(expected, next, std::memory_order_acq_rel);
  }

  std::atomic<State> state_{State::kQueued};
};

/// Gives the `offload()` templates access to the pool's queue.
struct BlockingPoolAccess {
  static bool submit(BlockingPool& pool, std::shared_ptr<BlockingJob> job);
  static void count_cancelled(BlockingPool& pool) noexcept;
  static std::string describe_closed(const BlockingPool& pool);
};

}  // namespace detail

/// A fixed-size thread pool for blocking work: SQLite, file I/O, CPU-heavy
/// code, anything that must not run on the event loop. Coroutines hand work
/// to it with `co_await offload(pool, fn)` (offload.hpp).
///
/// Jobs run in FIFO order of submission, up to `thread_count()` at a time.
/// There is no limit on the queue length: callers that can submit without
/// bound should put a `Semaphore` in front of the pool.
///
/// Shutdown order (the pool posts each result back to the awaiting
/// coroutine's executor, so that executor must still run):
///   1. stop submitting work (drain or cancel the tasks that offload),
///   2. `join()` the pool: it rejects new jobs, runs every queued job and
///      joins its threads,
///   3. let the event loop finish (`io_context::run()` returns once the
///      delivered results have been handled), or stop it.
/// Declare the pool after the `io_context` so that the destructor, which
/// also joins, runs while the `io_context` still exists. A job whose result
/// is posted to an `io_context` that has already stopped is never resumed:
/// its awaiting coroutine is destroyed with the `io_context`.
///
/// Thread safety: every member function may be called from any thread,
/// except that `join()` must not be called from a pool thread.
class BlockingPool {
 public:
  /// Starts `threads` threads named "<name>-<index>" (cut to the 15 bytes
  /// Linux allows). REQUIRES: `threads >= 1`.
  explicit BlockingPool(std::size_t threads, std::string name = "blocking");

  /// Joins the pool (see `join()`).
  ~BlockingPool();

  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  /// Stops accepting jobs, runs every job already queued, and joins the
  /// threads. Blocks the calling thread until the running and queued jobs
  /// have finished. Later `offload()` calls fail with
  /// `BlockingPoolClosedError`. Idempotent; callable from several threads.
  /// Throws std::logic_error when called from one of the pool's threads.
  void join();

  const std::string& name() const noexcept { return name_; }
  std::size_t thread_count() const noexcept { return thread_count_; }

  /// Jobs waiting for a thread.
  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }
  /// Jobs running on a pool thread now.
  std::size_t running() const noexcept { return running_.load(std::memory_order_relaxed); }
  /// Jobs that have finished, with a value or an exception.
  std::size_t completed() const noexcept { return completed_.load(std::memory_order_relaxed); }
  /// Jobs dropped before they started because their awaiter was cancelled.
  std::size_t cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }

 private:
  friend struct detail::BlockingPoolAccess;

  bool submit(std::shared_ptr<detail::BlockingJob> job);
  void run_worker(std::size_t index);

  std::string name_;
  std::size_t thread_count_;

  std::mutex mutex_;
  std::condition_variable job_available_;
  std::deque<std::shared_ptr<detail::BlockingJob>> queue_;  // guarded by mutex_
  bool closed_ = false;                                     // guarded by mutex_

  std::mutex join_mutex_;
  std::vector<std::thread> threads_;  // guarded by join_mutex_ after construction

  std::atomic<std::size_t> queued_{0};
  std::atomic<std::size_t> running_{0};
  std::atomic<std::size_t> completed_{0};
  std::atomic<std::size_t> cancelled_{0};
};

}  // namespace sluice::runtime
