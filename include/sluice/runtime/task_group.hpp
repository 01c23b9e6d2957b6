#pragma once

#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <sluice/runtime/semaphore.hpp>

/// Bounded task groups: run `fn(item)` over many items with at most `limit`
/// calls in flight, structured like Python's `asyncio.TaskGroup`.
///
///     co_await for_each_bounded(chat_ids, 30, [&](std::int64_t chat_id) {
///       return send_newsletter(api, chat_id);
///     });
///
/// Semantics shared by every function here:
/// - A slot is taken before the next item is read and its coroutine started
///   (acquire-before-spawn), so at most `limit` child coroutines exist and
///   memory is O(limit), not O(items). Each item is copied (or moved) into
///   its child's frame, so `fn` may take it by reference.
/// - The first exception from a child or from reading the items cancels the
///   other children (terminal cancellation), stops reading items, waits for
///   every child to unwind, then is rethrown. Later exceptions are logged at
///   debug level by "sluice.runtime" and dropped.
/// - Cancelling the awaiting coroutine cancels every child, waits for them
///   to unwind, and then throws `operation_aborted`.
/// - An empty input completes at once.
/// - Children run on the executor of the awaiting coroutine (so inside a
///   TaskSet task they carry its name), in start order, concurrently.
/// - What must outlive the call: `fn` is moved into the operation. A range
///   passed as an lvalue is referenced, not copied, so it must stay alive
///   and unchanged until the awaitable completes. An rvalue range is moved
///   in.
/// - Throws `std::invalid_argument` when `limit` is 0.
namespace sluice::runtime {

namespace detail {

template <typename T>
struct AwaitableResult {};

template <typename T, typename Executor>
struct AwaitableResult<boost::asio::awaitable<T, Executor>> {
  using type = T;
};

template <typename T>
struct OptionalValue {};

template <typename T>
struct OptionalValue<std::optional<T>> {
  using type = T;
};

// State of one bounded group: its slots, running children, the first error
// and the waiting producer. Loop-affine.
class BoundedGroup : public std::enable_shared_from_this<BoundedGroup> {
 public:
  BoundedGroup(boost::asio::any_io_executor executor, std::size_t limit);

  // True once the group failed or was cancelled: read no more items.
  bool stopping() const noexcept { return stopping_; }
  std::size_t in_flight() const noexcept { return in_flight_; }
  Semaphore& slots() noexcept { return slots_; }

  // Starts `child`, which keeps `slot` until it ends.
  void spawn(boost::asio::awaitable<void> child, Permit slot);

  // Records an exception from the producer (reading items) or from a child.
  void record_error(std::exception_ptr error);

  // Cancels every child and stops reading items.
  void stop();

  // Waits until no child runs. While it waits, cancelling the awaiting
  // coroutine stops the group instead of ending the wait.
  boost::asio::awaitable<void> wait_idle();

  // Rethrows the first error, or throws operation_aborted if `cancelled`.
  void rethrow_outcome(bool cancelled) const;

  // Called by a child's completion handler.
  void child_finished(std::size_t index, const std::exception_ptr& error);

 private:
  struct Child {
    boost::asio::cancellation_signal signal;
    bool running = false;
  };
  struct IdleCancellation;
  struct WaitIdleInitiation;

  void add_idle_waiter(boost::asio::any_completion_handler<void(boost::system::error_code)> handler);

  boost::asio::any_io_executor executor_;
  Semaphore slots_;
  std::deque<Child> children_;
  std::vector<std::size_t> free_children_;
  std::size_t in_flight_ = 0;
  bool stopping_ = false;
  std::exception_ptr first_error_;
  std::optional<boost::asio::any_completion_handler<void(boost::system::error_code)>> idle_waiter_;
  boost::asio::cancellation_slot idle_waiter_slot_;
};

template <typename Fn, typename Item>
boost::asio::awaitable<void> run_child(Fn* fn, Item item) {
  co_await std::invoke(*fn, item);
}

template <typename Fn, typename Item, typename Result>
boost::asio::awaitable<void> run_mapped_child(Fn* fn, Item item, std::vector<std::optional<Result>>* results,
                                              std::size_t index) {
  Result result = co_await std::invoke(*fn, item);
  (*results)[index].emplace(std::move(result));
}

// Waits for a free slot; returns an empty permit when the group stops
// instead. The caller tries `slots().try_acquire()` first, which is cheaper.
inline boost::asio::awaitable<Permit> wait_for_slot(BoundedGroup& group) {
  auto token = boost::asio::as_tuple(boost::asio::use_awaitable);
  auto [error, permit] = co_await group.slots().async_acquire(1, token);
  if (error == boost::asio::error::operation_aborted) {
    group.stop();
  }
  co_return std::move(permit);
}

// Joins the children on every path, then reports the outcome. The producer
// calls it after the loop, outside any catch block.
inline boost::asio::awaitable<void> finish_group(std::shared_ptr<BoundedGroup> group,
                                                 std::exception_ptr producer_error) {
  if (producer_error) {
    group->record_error(std::move(producer_error));
  }
  boost::asio::cancellation_state cancellation = co_await boost::asio::this_coro::cancellation_state;
  bool cancelled = cancellation.cancelled() != boost::asio::cancellation_type::none;
  if (cancelled) {
    group->stop();
  }

  // The awaiting coroutine may already be cancelled, which would make the
  // wait throw at once; the children must be joined regardless.
  bool throw_if_cancelled = co_await boost::asio::this_coro::throw_if_cancelled();
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  co_await group->wait_idle();
  co_await boost::asio::this_coro::throw_if_cancelled(throw_if_cancelled);

  cancellation = co_await boost::asio::this_coro::cancellation_state;
  group->rethrow_outcome(cancellation.cancelled() != boost::asio::cancellation_type::none);
}

// The whole of a group: starts the children, joins them and reports.
// `(*spawn_next)(group, slot)` reads one item and spawns its child with the
// slot; it returns false (or an awaitable of false) at the end of the input.
// It is passed by pointer because it lives in the caller's frame, which
// outlives this coroutine.
template <typename SpawnNext>
boost::asio::awaitable<void> run_group(std::size_t limit, SpawnNext* spawn_next) {
  auto executor = co_await boost::asio::this_coro::executor;
  auto group = std::make_shared<BoundedGroup>(executor, limit);
  std::exception_ptr producer_error;
  try {
    while (!group->stopping()) {
      Permit slot;
      if (std::optional<Permit> free = group->slots().try_acquire()) {
        slot = std::move(*free);
      } else {
        slot = co_await wait_for_slot(*group);
      }
      if (!slot) {
        break;
      }

      bool more = false;
      if constexpr (std::is_same_v<std::invoke_result_t<SpawnNext&, BoundedGroup&, Permit>, bool>) {
        more = (*spawn_next)(*group, std::move(slot));
      } else {
        more = co_await (*spawn_next)(*group, std::move(slot));
      }
      if (!more) {
        break;
      }
    }
  } catch (...) {
    producer_error = std::current_exception();
  }
  co_await finish_group(std::move(group), std::move(producer_error));
}

void check_limit(std::size_t limit);

template <typename View, typename Fn>
boost::asio::awaitable<void> for_each_in_view(View items, std::size_t limit, Fn fn) {
  using Item = std::ranges::range_value_t<View>;
  auto it = std::ranges::begin(items);
  auto end = std::ranges::end(items);
  auto spawn_next = [&](BoundedGroup& group, Permit slot) {
    if (it == end) {
      return false;
    }
    group.spawn(run_child(&fn, Item(*it)), std::move(slot));
    ++it;
    return true;
  };
  co_await run_group(limit, &spawn_next);
}

template <typename View, typename Fn, typename Result>
boost::asio::awaitable<std::vector<Result>> map_view(View items, std::size_t limit, Fn fn) {
  using Item = std::ranges::range_value_t<View>;
  std::vector<std::optional<Result>> results;
  if constexpr (std::ranges::sized_range<View>) {
    results.reserve(std::ranges::size(items));
  }
  auto it = std::ranges::begin(items);
  auto end = std::ranges::end(items);
  auto spawn_next = [&](BoundedGroup& group, Permit slot) {
    if (it == end) {
      return false;
    }
    std::size_t index = results.size();
    results.emplace_back();
    group.spawn(run_mapped_child(&fn, Item(*it), &results, index), std::move(slot));
    ++it;
    return true;
  };
  co_await run_group(limit, &spawn_next);

  std::vector<Result> ordered;
  ordered.reserve(results.size());
  for (std::optional<Result>& result : results) {
    ordered.push_back(std::move(*result));
  }
  co_return ordered;
}

template <typename Source, typename Fn>
boost::asio::awaitable<void> for_each_pulled(Source source, std::size_t limit, Fn fn) {
  using Pulled = typename AwaitableResult<std::invoke_result_t<Source&>>::type;
  using Item = typename OptionalValue<Pulled>::type;
  auto spawn_next = [&](BoundedGroup& group, Permit slot) -> boost::asio::awaitable<bool> {
    std::optional<Item> item = co_await std::invoke(source);
    if (!item) {
      co_return false;
    }
    group.spawn(run_child(&fn, std::move(*item)), std::move(slot));
    co_return true;
  };
  co_await run_group(limit, &spawn_next);
}

}  // namespace detail

/// A callable that yields the next item asynchronously, or `std::nullopt`
/// at the end: `() -> awaitable<std::optional<T>>`.
template <typename Source>
concept PullSource = std::invocable<Source&> && requires {
  typename detail::OptionalValue<
      typename detail::AwaitableResult<std::invoke_result_t<Source&>>::type>::type;
};

/// Runs `fn(item)` for every item of `items`, at most `limit` at a time.
/// `fn` returns `awaitable<void>` (any other result is ignored). See the
/// top of this header for ordering, errors, cancellation and lifetimes.
template <std::ranges::viewable_range Range, typename Fn>
  requires std::ranges::input_range<Range> &&
           std::invocable<Fn&, std::ranges::range_value_t<Range>&>
boost::asio::awaitable<void> for_each_bounded(Range&& items, std::size_t limit, Fn fn) {
  detail::check_limit(limit);
  return detail::for_each_in_view(std::views::all(std::forward<Range>(items)), limit, std::move(fn));
}

/// Pulls items from `source` until it yields `std::nullopt`, running
/// `fn(item)` for each, at most `limit` at a time. A slot is taken before
/// each pull, so the source is not read while all slots are busy.
template <PullSource Source, typename Fn>
boost::asio::awaitable<void> for_each_bounded(Source source, std::size_t limit, Fn fn) {
  detail::check_limit(limit);
  return detail::for_each_pulled(std::move(source), limit, std::move(fn));
}

/// Runs `fn(item)` for every item, at most `limit` at a time, and returns
/// the results in input order. `fn` returns `awaitable<R>`; the results
/// take O(items) memory, the children O(limit).
template <std::ranges::viewable_range Range, typename Fn,
          typename Result = typename detail::AwaitableResult<
              std::invoke_result_t<Fn&, std::ranges::range_value_t<Range>&>>::type>
  requires std::ranges::input_range<Range>
boost::asio::awaitable<std::vector<Result>> map_bounded(Range&& items, std::size_t limit, Fn fn) {
  detail::check_limit(limit);
  return detail::map_view<std::views::all_t<Range>, Fn, Result>(std::views::all(std::forward<Range>(items)),
                                                                limit, std::move(fn));
}

}  // namespace sluice::runtime
