#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <sluice/telegram/types_fwd.hpp>
#include <sluice/updates/sink.hpp>

namespace sluice::dispatch {

/// An exception that escaped a handler, with the update and the handler it
/// escaped from. Bot wraps handler errors in it; the Dispatcher logs it.
/// `what()` names the update_id, the handler and the original error, which
/// is kept as the nested exception (std::rethrow_if_nested).
class HandlerError : public std::runtime_error, public std::nested_exception {
 public:
  /// Call inside a catch block: the exception being handled becomes the
  /// nested exception. `error` is its what().
  HandlerError(std::int64_t update_id, std::string handler_name, const std::string& error);

  std::int64_t update_id() const noexcept { return update_id_; }
  /// The name of the handler (see Router::on), or "" when routing failed
  /// before a handler was picked.
  const std::string& handler_name() const noexcept { return handler_name_; }
  /// The what() of the original error.
  const std::string& error() const noexcept { return error_; }

 private:
  std::int64_t update_id_;
  std::string handler_name_;
  std::string error_;
};

struct DispatcherOptions {
  /// Updates whose handlers run at once, over all chats. Default 256.
  std::size_t max_concurrent_updates = 256;
  /// Updates taken and not yet handled (running or queued behind an update
  /// of the same chat). When reached, `submit` waits, which pauses
  /// fetching. Must be at least max_concurrent_updates. Default 1024.
  std::size_t max_pending_updates = 1024;
};

/// Counters of a Dispatcher; read them on its event loop.
struct DispatcherStats {
  /// Handlers running now.
  std::size_t running = 0;
  /// Maximum number of handlers that ran at once.
  std::size_t max_running = 0;
  /// Updates taken and not yet handled.
  std::size_t pending = 0;
  /// Chats (or users) with an update running or queued; their per-chat
  /// queues exist only while this is so.
  std::size_t active_keys = 0;
  std::uint64_t handled_total = 0;
  /// Updates whose handler threw (they count as handled).
  std::uint64_t failed_total = 0;
};

/// Runs a handler for each update with per-chat ordering and bounded
/// concurrency. It is the UpdateSink of long polling and webhooks.
///
/// Ordering: updates with the same ordering key (their chat, or their user
/// when they have no chat; see updates::ordering_key_of) are handled one at
/// a time in the order `submit` took them. Updates with different keys run
/// concurrently, up to max_concurrent_updates, and take free slots in FIFO
/// order. Updates with no key (a poll) run without ordering.
///
/// Memory: at most max_pending_updates updates are held; the queue of a key
/// is removed as soon as it is empty, so memory does not grow with the
/// number of chats ever seen.
///
/// Errors: an exception that escapes the handler is logged at error level
/// by the logger "sluice.dispatch" with update_id, handler (for a
/// HandlerError) and error, and the update counts as handled; other updates
/// are not affected and nothing is retried.
///
/// Executor and threads: everything runs on `executor` (a single-threaded
/// io_context's); not thread-safe. Lifetime: call `close()` before
/// destroying it; the handler must outlive it.
class Dispatcher final : public updates::UpdateSink {
 public:
  /// Handles one update. A throw is logged (see the class comment).
  using UpdateHandler = std::function<boost::asio::awaitable<void>(const telegram::Update&)>;

  /// Throws std::invalid_argument for a limit of 0 or max_pending_updates
  /// below max_concurrent_updates.
  Dispatcher(boost::asio::any_io_executor executor, DispatcherOptions options,
             UpdateHandler handler);
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Waits until fewer than max_pending_updates updates are held, then
  /// takes `update`; `on_handled` runs on the loop once its handler has
  /// returned or thrown. An update still queued or running when `close`
  /// cancels it is not handled, and `on_handled` does not run.
  ///
  /// Cancellation: a cancelled wait throws operation_aborted and takes
  /// nothing. Errors: runtime::SemaphoreClosed after `close()`.
  boost::asio::awaitable<void> submit(telegram::Update update,
                                      updates::HandledCallback on_handled) override;

  /// True while fewer than max_pending_updates updates are held and no
  /// `submit` waits, so the next `submit` returns without waiting.
  bool has_room() const noexcept override;

  /// Stops taking updates, waits up to `grace` for the held ones to be
  /// handled, then cancels the rest and waits until they have unwound.
  /// Cancellation: stops the wait; the dispatcher stays closed.
  boost::asio::awaitable<void> close(std::chrono::steady_clock::duration grace);

  DispatcherStats stats() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::dispatch
