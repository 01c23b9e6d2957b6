#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sluice/runtime/rate_limit.hpp>

namespace sluice::runtime {

/// One blocked event loop turn, reported while the loop is still blocked.
struct StallReport {
  /// The name of the task running on the loop thread when the stall was
  /// detected (see RunningTaskName); empty when no named task was running.
  std::string task{};
  /// How long the loop had been blocked when the stall was detected: at
  /// least the threshold, and at most one heartbeat interval less than the
  /// true time.
  std::chrono::milliseconds blocked_for{};
  /// Stalls detected since the monitor started, this one included.
  std::uint64_t stall_number = 0;
  /// Stalls detected since the previous report but not reported because of
  /// the rate limit.
  std::uint64_t suppressed = 0;
  /// The loop thread's stack, one symbolized frame per line, innermost
  /// first; empty unless backtraces are enabled and the capture succeeded.
  std::vector<std::string> backtrace{};
};

/// Settings of a `StallMonitor`.
struct StallMonitorOptions {
  /// A loop turn longer than this is reported. Default 100 ms, the default
  /// `slow_callback_duration` of asyncio's debug mode.
  std::chrono::milliseconds slow_callback_threshold{100};
  /// The period of the heartbeat timer on the loop. Reported durations are
  /// accurate to one interval. Each beat costs one timer wake-up on the loop.
  /// REQUIRES: below `slow_callback_threshold`. Default 10 ms.
  std::chrono::milliseconds heartbeat_interval{10};
  /// Reports allowed in a row before the rate limit applies. Default 5.
  std::size_t report_burst = 5;
  /// After the burst, one more report is allowed per interval; the stalls
  /// in between are counted and the next report shows how many were
  /// suppressed. Default 12 s (5 reports a minute).
  std::chrono::milliseconds report_interval{12'000};
  /// Capture and print the loop thread's stack with each report (Linux
  /// only; see `StallMonitor`). Default false.
  bool capture_backtrace = false;
  /// Log "event loop unblocked" at INFO when a reported stall ends.
  /// Default true.
  bool log_unblocked = true;
  /// Apply `SLUICE_ASYNC_DEBUG=1` from the environment: it lowers the
  /// threshold to 25 ms (if it was higher) and enables backtraces.
  /// Default true.
  bool use_environment = true;
  /// Name of the loop in log lines (`loop=`). Default "main".
  std::string loop_name = "main";
  /// Called on the watchdog thread for every stall that is reported (not
  /// for suppressed ones), after the log line. Must not block for long; an
  /// exception it throws is logged and ignored. Default: none.
  std::function<void(const StallReport&)> on_stall{};
};

/// Detects event loop turns that block for longer than a threshold and
/// reports them while the loop is still blocked, naming the task that runs.
///
/// How it works: a heartbeat timer on the loop records the time every
/// `heartbeat_interval`. A watchdog thread on the steady (wall) clock wakes
/// when the next beat is `slow_callback_threshold` overdue. If the beat has
/// not moved, it reads the loop thread's `RunningTaskName`, logs a WARNING on
/// "sluice.runtime" (`loop=<name> task=<name> blocked_ms=<n>`), counts the
/// stall and calls `on_stall`. One blocked turn gives exactly one report;
/// when it ends, an INFO line gives the total time. Reports beyond
/// `report_burst` are rate-limited, and the next report carries the
/// suppressed count. A wall clock is needed because a CPU-time timer does
/// not advance while the loop thread sleeps in a blocking call.
///
/// Backtraces (`capture_backtrace` or `SLUICE_ASYNC_DEBUG=1`, Linux): the
/// watchdog sends a real-time signal (SIGRTMIN + 3) to the loop thread. The
/// handler calls `backtrace()` into a preallocated buffer, with no allocation
/// and no locks, and the watchdog thread symbolizes the frames afterwards.
/// `start()` calls `backtrace()` once, so that the handler does not load
/// libgcc.
/// Functions without dynamic symbols show as `binary+0xoffset`, which
/// `addr2line -f -C -i -e binary 0xoffset` resolves. NOTE: the signal makes a
/// blocking system call on the loop that is not restarted automatically
/// (nanosleep, poll) return EINTR early, and a thread under TSan receives it
/// only at its next intercepted call, so a busy loop may give no stack.
///
/// Lifecycle: `start()` and `stop()` may be called from any thread.
/// The heartbeat keeps `io_context::run()` from returning, so call `stop()`
/// during shutdown. Stop the monitor before the loop thread exits (it reads
/// that thread's task name), and destroy it before the `io_context`.
/// Only stalls of a running loop are reported: none before the first beat
/// or after `io_context::stop()`.
///
/// Thread safety: all member functions are thread-safe.
class StallMonitor {
 public:
  /// Validates `options` (std::invalid_argument) and applies the
  /// environment. Does not start monitoring.
  explicit StallMonitor(boost::asio::io_context& loop, StallMonitorOptions options = {});
  ~StallMonitor();

  StallMonitor(const StallMonitor&) = delete;
  StallMonitor& operator=(const StallMonitor&) = delete;

  /// Starts the heartbeat on the loop and the watchdog thread. The first
  /// check happens after the loop has run the first beat. No-op if running.
  void start();

  /// Stops the watchdog thread (joins it) and cancels the heartbeat.
  /// Idempotent; the monitor can be started again.
  void stop();

  /// Stalls detected, reported or suppressed; a counter for metrics.
  std::uint64_t stalls_total() const noexcept { return stalls_total_.load(std::memory_order_relaxed); }
  /// Stalls detected but not reported because of the rate limit.
  std::uint64_t reports_suppressed_total() const noexcept {
    return suppressed_total_.load(std::memory_order_relaxed);
  }

  /// The options in effect, after `SLUICE_ASYNC_DEBUG` was applied.
  const StallMonitorOptions& options() const noexcept { return options_; }

  /// True when `SLUICE_ASYNC_DEBUG` is set to a value other than "" or "0".
  static bool async_debug_requested();

 private:
  struct Heartbeat;

  void arm_heartbeat();
  void run_watchdog();
  // Logs and calls on_stall unless rate-limited; returns true if reported.
  bool report_stall(std::chrono::steady_clock::duration blocked, std::string task);

  boost::asio::io_context& loop_;
  StallMonitorOptions options_;

  // Shared with the heartbeat handlers, which may run after this object is
  // destroyed; guards the timer below.
  std::shared_ptr<Heartbeat> heartbeat_;
  boost::asio::steady_timer timer_;

  std::mutex lifecycle_mutex_;  // serialises start() and stop()
  std::thread watchdog_;

  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool stop_requested_ = false;  // guarded by watchdog_mutex_

  // Watchdog thread only.
  TokenBucket report_limit_;
  std::uint64_t suppressed_since_report_ = 0;

  std::atomic<std::uint64_t> stalls_total_{0};
  std::atomic<std::uint64_t> suppressed_total_{0};
};

}  // namespace sluice::runtime
