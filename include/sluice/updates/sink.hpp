#pragma once

#include <cstdint>
#include <functional>

#include <boost/asio/awaitable.hpp>

#include <sluice/telegram/types_fwd.hpp>

namespace sluice::updates {

/// Called once an update has been handled, whatever the outcome of its
/// handler, on the event loop. It receives the update_id.
using HandledCallback = std::function<void(std::int64_t update_id)>;

/// The receiver of an update source (long polling, webhook). The dispatcher
/// of sluice::dispatch implements it.
class UpdateSink {
 public:
  virtual ~UpdateSink() = default;

  /// Waits until the sink has room for `update`, takes it and returns; the
  /// update is then handled in the background and `on_handled` runs once
  /// it is done. Waiting here is the backpressure that pauses fetching.
  ///
  /// Cancellation: cancelling the caller while it waits for room throws
  /// operation_aborted, and the update is not taken (`on_handled` never
  /// runs). Errors: throws when the sink is closed; the update is not taken.
  virtual boost::asio::awaitable<void> submit(telegram::Update update,
                                              HandledCallback on_handled) = 0;

  /// Returns true when `submit` would take an update without waiting. The
  /// default, false, makes callers prepare for a wait.
  virtual bool has_room() const noexcept { return false; }
};

}  // namespace sluice::updates
