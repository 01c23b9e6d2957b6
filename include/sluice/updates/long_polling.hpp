#pragma once

// Long polling: fetches updates with getUpdates, hands them to an
// UpdateSink and confirms each one only after it is handled.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <sluice/updates/offset.hpp>
#include <sluice/updates/sink.hpp>

namespace sluice::telegram {
class BotApi;
}

namespace sluice::updates {

struct LongPollingOptions {
  /// Long-poll timeout passed to getUpdates. At most 50 s, the most Telegram
  /// accepts; the HTTP deadline is this plus BotApiOptions::long_poll_margin.
  std::chrono::seconds timeout = std::chrono::seconds(30);
  /// Updates per getUpdates call, 1 to 100 (Telegram's range).
  std::int64_t limit = 100;
  /// Update kinds to receive ("message", "callback_query", ...); std::nullopt
  /// keeps Telegram's current choice. Bot::run_polling fills it from the
  /// router when empty.
  std::optional<std::vector<std::string>> allowed_updates{};
  /// First delay after a failed getUpdates; it doubles up to
  /// `backoff_max`, and each delay is drawn uniformly from [d/2, d].
  std::chrono::milliseconds backoff_initial = std::chrono::milliseconds(500);
  std::chrono::milliseconds backoff_max = std::chrono::seconds(30);
  /// Seed of the backoff jitter; 0 seeds from std::random_device.
  std::uint64_t jitter_seed = 0;
  /// Confirms updates to Telegram once they are stored in the OffsetStore's
  /// journal instead of once they are handled. Each getUpdates then returns
  /// a full batch of new updates while the previous batch is handled, and
  /// a restart handles again what the journal still holds. Needs a store
  /// whose has_journal() is true. Default false.
  bool journal = false;
  /// Calls deleteWebhook (keeping the updates Telegram holds) before the
  /// first getUpdates, so that a webhook left set by an earlier run does
  /// not stop polling with 409. Applied by Bot::run_polling. Default false.
  bool delete_webhook = false;
};

/// Thrown by LongPoller::run when polling cannot continue: Telegram
/// returned 401 (the token is wrong or revoked) or 409 (a webhook is set,
/// or another process polls with the same token).
class PollingStopped : public std::runtime_error {
 public:
  PollingStopped(int error_code, const std::string& message);
  /// Telegram's error_code: 401 or 409.
  int error_code() const noexcept { return error_code_; }

 private:
  int error_code_;
};

/// Counters of one LongPoller; read them on its event loop.
struct LongPollingStats {
  std::uint64_t polls = 0;
  std::uint64_t poll_errors = 0;
  std::uint64_t updates_received = 0;
  /// Updates skipped because they were received before (resent by Telegram
  /// or confirmed before a restart).
  std::uint64_t duplicates_skipped = 0;
  std::uint64_t dead_letters = 0;
};

/// Fetches updates by long polling and hands each one to an UpdateSink.
///
/// Confirmation: an update is confirmed (the offset passed to the next
/// getUpdates moves past it) only when it and every update received before
/// it are handled; OffsetTracker computes that watermark. The store saves
/// the watermark before each getUpdates that passes it, so after a restart
/// the bot skips what it has confirmed. An update handled while an earlier
/// one still runs is handled again after a crash (at-least-once).
///
/// Fetching overlaps handling: the next getUpdates is issued while the
/// batch is handled, as soon as a getUpdates from the watermark can return
/// at least `limit / 2` new updates (the ones still being handled come back
/// first). When a batch contains nothing new, the poller waits until the
/// watermark moves before it polls again, so it never spins. NOTE:
/// getUpdates returns at most `limit` updates from the watermark, so the
/// updates in progress span at most `limit` update_ids past the oldest
/// unhandled one, and a handler that runs long holds back fetching beyond
/// that window. The journal below removes this limit.
///
/// With LongPollingOptions::journal, the offset passed to getUpdates moves
/// past every update once the batch and the new offset are stored in the
/// journal in one step. The next getUpdates then runs while the sink takes
/// the stored batch, so the sink's capacity is the only limit on updates
/// in progress. An entry leaves
/// the journal soon after its update is handled. At start the poller hands
/// the sink every update left in the journal, lowest update_id first,
/// before it polls. After a crash, the updates handled but not yet removed
/// from the journal are handled again (at-least-once); none is lost.
///
/// Errors: a failed getUpdates is logged and retried after a jittered
/// backoff; 429 waits `retry_after` instead. 401 and 409 end `run` with
/// PollingStopped. An update that cannot be parsed is logged, stored as a
/// dead letter and confirmed like a handled one.
///
/// Executor and threads: runs on the executor of the BotApi; not
/// thread-safe. Lifetime: the BotApi, the sink and the store must outlive
/// `run`.
class LongPoller {
 public:
  /// Throws std::invalid_argument for options out of range, and for
  /// `journal` with a store that has none.
  LongPoller(telegram::BotApi& api, UpdateSink& sink, OffsetStore& store,
             LongPollingOptions options);
  ~LongPoller();
  LongPoller(const LongPoller&) = delete;
  LongPoller& operator=(const LongPoller&) = delete;

  /// Polls until `stop()` or cancellation, handing new updates to the sink.
  /// It returns without waiting for the updates the sink has taken; drain
  /// the sink, then call `finish()`.
  ///
  /// Cancellation: terminal cancellation ends the current getUpdates or
  /// wait and returns like stop(). Errors: PollingStopped for 401 and 409;
  /// errors of the store propagate.
  boost::asio::awaitable<void> run();

  /// Saves the watermark (with the journal: removes the entries of handled
  /// updates) and, when `confirm` is true, confirms it to
  /// Telegram with a final getUpdates with timeout 0, so a restart does not
  /// receive the handled updates again. Call after `run` returned and the
  /// sink is drained. A failed final getUpdates is logged, not thrown: the
  /// saved offset still skips those updates after a restart. Errors of the
  /// store propagate.
  boost::asio::awaitable<void> finish(bool confirm = true);

  /// Asks `run` to finish: the current getUpdates is cancelled. Call on
  /// the event loop; idempotent.
  void stop();

  /// The watermark tracker, for inspection.
  const OffsetTracker& tracker() const noexcept;
  const LongPollingStats& stats() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::updates
