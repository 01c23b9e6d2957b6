#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/detail/outcome.hpp>

namespace sluice::runtime {
namespace detail {

// The job behind one offload(): owns the function until a pool thread runs
// it, and the awaiter's handler until the result is posted back.
template <class Result, class F, class Handler>
class OffloadJob final : public BlockingJob,
                         public std::enable_shared_from_this<OffloadJob<Result, F, Handler>> {
 public:
  OffloadJob(BlockingPool& pool, F&& fn, Handler&& handler)
      : pool_(pool),
        fn_(std::move(fn)),
        handler_(std::move(handler)),
        work_(boost::asio::prefer(boost::asio::get_associated_executor(handler_),
                                  boost::asio::execution::outstanding_work.tracked)) {}

  // Connects the awaiter's cancellation slot, then queues the job or, when
  // the pool is closed, completes it with BlockingPoolClosedError. Called on
  // the awaiter's executor inside the initiating function.
  void start() {
    auto slot = boost::asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) {
      slot.template emplace<CancelHandler>(this->shared_from_this());
    }

    if (BlockingPoolAccess::submit(pool_, this->shared_from_this())) {
      return;
    }
    if (claim_for_cancel()) {
      outcome_.set_exception(std::make_exception_ptr(
          BlockingPoolClosedError(BlockingPoolAccess::describe_closed(pool_))));
      post_completion();
    }
  }

  void execute() noexcept override {
    outcome_.store_result_of(std::move(*fn_));
    fn_.reset();  // the function's captures are destroyed on the pool thread
  }

  void deliver() noexcept override { post_completion(); }

 private:
  using WorkExecutor = std::decay_t<decltype(boost::asio::prefer(
      std::declval<boost::asio::associated_executor_t<Handler>>(),
      boost::asio::execution::outstanding_work.tracked))>;

  // Runs on the awaiter's executor: disconnects the cancellation slot before
  // resuming, because the resumed coroutine may reuse the slot at once.
  struct Completion {
    Handler handler;
    Outcome<Result> outcome;
    WorkExecutor work;

    void operator()() {
      auto slot = boost::asio::get_associated_cancellation_slot(handler);
      if (slot.is_connected()) {
        slot.clear();
      }
      std::move(handler)(std::move(outcome));
    }
  };

  // Installed in the awaiter's cancellation slot. Cancellation signals are
  // emitted on the awaiter's executor, as Asio requires.
  struct CancelHandler {
    std::shared_ptr<OffloadJob> job;

    void operator()(boost::asio::cancellation_type_t) const {
      // A job already claimed by a pool thread runs to completion and its
      // result is delivered; only a job that has not started is dropped.
      if (!job->claim_for_cancel()) {
        return;
      }
      BlockingPoolAccess::count_cancelled(job->pool_);
      job->fn_.reset();
      job->outcome_.set_exception(std::make_exception_ptr(
          boost::system::system_error(boost::asio::error::operation_aborted)));
      job->post_completion();
    }
  };

  void post_completion() noexcept {
    WorkExecutor work = work_;
    boost::asio::post(work, Completion{std::move(handler_), std::move(outcome_), std::move(work_)});
  }

  BlockingPool& pool_;
  std::optional<F> fn_;
  Handler handler_;
  Outcome<Result> outcome_;
  WorkExecutor work_;
};

template <class Result>
struct InitiateOffload {
  BlockingPool* pool;

  template <class Handler, class F>
  void operator()(Handler&& handler, F&& fn) const {
    using Job = OffloadJob<Result, std::decay_t<F>, std::decay_t<Handler>>;
    auto job = std::make_shared<Job>(*pool, std::forward<F>(fn), std::forward<Handler>(handler));
    job->start();
  }
};

// Takes `fn` by reference so that no temporary copy of it lives in the
// caller's co_await expression (g++ 12 destroys such temporaries twice).
template <class Result, class F>
auto async_offload(BlockingPool& pool, F&& fn) {
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(Outcome<Result>)>(
      InitiateOffload<Result>{&pool}, boost::asio::use_awaitable, std::forward<F>(fn));
}

}  // namespace detail

/// Runs `fn()` on a thread of `pool` and resumes the awaiting coroutine on
/// its own executor (the event loop) with the result, or rethrows the
/// exception `fn` threw. Void results and move-only results are supported;
/// reference results are not.
///
/// Usage (the lambda is a named local because g++ 12 destroys a capturing
/// lambda written inside a `co_await` expression twice):
///   auto load = [&db, id] { return db.load(id); };
///   auto rows = co_await offload(pool, load);
///
/// Executor: `fn` runs on a pool thread; the coroutine always resumes through
/// a post to its own executor, never inline.
/// Ordering: jobs start in submission order (FIFO per pool).
/// Cancellation: a job that has not started when the awaiting coroutine is
/// cancelled (any cancellation type) is dropped: `fn` never runs and the
/// awaiter gets `boost::system::system_error(operation_aborted)`. A job that
/// has started cannot be interrupted, and the awaiter keeps waiting for it:
/// its result is delivered (never abandoned), and the coroutine observes the
/// cancellation at its next `co_await`. Waiting keeps `fn`'s references to
/// the coroutine's locals valid; it also means a cancelled task finishes only
/// after its running blocking call returns, which shutdown deadlines must
/// allow for.
/// Lifetimes: `fn` is moved into the job and destroyed on the pool thread
/// after it returns (on the awaiter's executor if the job is dropped).
/// Anything `fn` refers to must outlive the call, which holds for the
/// awaiting coroutine's locals. `pool` must outlive the call.
/// The awaiting coroutine's executor is kept busy (outstanding work) until
/// the result is delivered, so `io_context::run()` does not return early.
/// Errors: whatever `fn` throws; `BlockingPoolClosedError` after `join()`;
/// `system_error(operation_aborted)` when cancelled before starting.
template <class F>
boost::asio::awaitable<std::invoke_result_t<F>> offload(BlockingPool& pool, F fn) {
  using Result = std::invoke_result_t<F>;
  static_assert(!std::is_reference_v<Result>, "offload() cannot return a reference; return a value");

  detail::Outcome<Result> outcome = co_await detail::async_offload<Result>(pool, std::move(fn));
  co_return outcome.take();
}

}  // namespace sluice::runtime
