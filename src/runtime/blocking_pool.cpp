#include <sluice/runtime/blocking_pool.hpp>

#include <pthread.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include <sluice/runtime/logging.hpp>

namespace sluice::runtime {
namespace {

// Linux limits thread names to 15 bytes plus the terminating NUL.
constexpr std::size_t kMaxThreadNameLength = 15;

// The pool whose worker runs on this thread, so join() can detect a call from
// inside a job (joining its own thread would throw or deadlock).
thread_local const BlockingPool* current_pool = nullptr;

void name_this_thread(const std::string& pool_name, std::size_t index) {
  std::string suffix = fmt::format("-{}", index);
  std::size_t keep = kMaxThreadNameLength - std::min(suffix.size(), kMaxThreadNameLength);
  std::string thread_name = pool_name.substr(0, keep) + suffix;
  pthread_setname_np(pthread_self(), thread_name.c_str());
}

}  // namespace

namespace detail {

bool BlockingPoolAccess::submit(BlockingPool& pool, std::shared_ptr<BlockingJob> job) {
  return pool.submit(std::move(job));
}

void BlockingPoolAccess::count_cancelled(BlockingPool& pool) noexcept {
  pool.queued_.fetch_sub(1, std::memory_order_relaxed);
  pool.cancelled_.fetch_add(1, std::memory_order_relaxed);
}

std::string BlockingPoolAccess::describe_closed(const BlockingPool& pool) {
  return fmt::format(
      "blocking pool `{}` is closed (join() was called), so it accepts no new jobs; "
      "completed {}, cancelled {}",
      pool.name(), pool.completed(), pool.cancelled());
}

}  // namespace detail

BlockingPool::BlockingPool(std::size_t threads, std::string name)
    : name_(std::move(name)), thread_count_(threads) {
  if (threads == 0) {
    throw std::invalid_argument(
        fmt::format("blocking pool `{}` needs at least one thread, got 0", name_));
  }

  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] { run_worker(i); });
  }
  module_logger("sluice.runtime")->debug("blocking pool started pool={} threads={}", name_, threads);
}

BlockingPool::~BlockingPool() { join(); }

void BlockingPool::join() {
  if (current_pool == this) {
    throw std::logic_error(
        fmt::format("blocking pool `{}`: join() called from one of its own threads", name_));
  }

  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  job_available_.notify_all();

  std::lock_guard join_lock(join_mutex_);
  bool joined_any = false;
  for (std::thread& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
      joined_any = true;
    }
  }
  if (joined_any) {
    module_logger("sluice.runtime")
        ->debug("blocking pool joined pool={} completed={} cancelled={}", name_, completed(),
                cancelled());
  }
}

bool BlockingPool::submit(std::shared_ptr<detail::BlockingJob> job) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      return false;
    }
    queue_.push_back(std::move(job));
    queued_.fetch_add(1, std::memory_order_relaxed);
  }
  job_available_.notify_one();
  return true;
}

void BlockingPool::run_worker(std::size_t index) {
  current_pool = this;
  name_this_thread(name_, index);

  while (true) {
    std::shared_ptr<detail::BlockingJob> job;
    {
      std::unique_lock lock(mutex_);
      job_available_.wait(lock, [this] { return closed_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // closed and drained
      }
      job = std::move(queue_.front());
      queue_.pop_front();
    }

    // A job whose awaiter was cancelled while it waited has been counted and
    // completed by the cancellation already.
    if (!job->claim_for_run()) {
      continue;
    }

    queued_.fetch_sub(1, std::memory_order_relaxed);
    running_.fetch_add(1, std::memory_order_relaxed);
    job->execute();
    // Counters change before the result is delivered, so an awaiter that
    // resumes reads its own job as completed.
    running_.fetch_sub(1, std::memory_order_relaxed);
    completed_.fetch_add(1, std::memory_order_relaxed);
    job->deliver();
  }
}

}  // namespace sluice::runtime
