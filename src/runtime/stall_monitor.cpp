#include <sluice/runtime/stall_monitor.hpp>

#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <utility>

#include <boost/asio/error.hpp>
#include <fmt/format.h>

#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/task_name.hpp>

namespace sluice::runtime {

using Clock = std::chrono::steady_clock;

namespace {

// Threshold under SLUICE_ASYNC_DEBUG=1: short enough to catch a blocking
// call that would go unnoticed in production, as Seastar's default of 25 ms
// for its reactor stall detector does.
constexpr std::chrono::milliseconds kAsyncDebugThreshold{25};

// The backtrace signal is SIGRTMIN + this. Seastar uses SIGRTMIN + 1 for its
// stall detector; a different number avoids a clash when both are linked.
constexpr int kBacktraceSignalOffset = 3;

// Frames captured per backtrace; the handler writes into a buffer this big.
constexpr int kMaxBacktraceFrames = 64;

// Frames dropped from the top of a capture: the signal handler itself and
// the kernel's signal return trampoline in libc.
constexpr int kHandlerFrames = 2;

// How long the watchdog waits for the loop thread to run the signal handler.
constexpr std::chrono::milliseconds kBacktraceTimeout{100};

// Linux limits thread names to 15 bytes.
constexpr const char* kWatchdogThreadName = "sluice-watchdog";

// ---------------------------------------------------------------------------
// Backtrace of the loop thread, captured in a signal handler.

enum CaptureState : int { kIdle, kRequested, kWriting, kDone };

// The handler's output. One capture runs at a time (capture_mutex), and the
// state handshake orders the handler's writes before the watchdog's reads.
struct CaptureSlot {
  std::atomic<int> state{kIdle};
  void* frames[kMaxBacktraceFrames] = {};
  int depth = 0;
};

CaptureSlot capture_slot;
std::mutex capture_mutex;
std::once_flag install_once;
bool handler_installed = false;  // written once under install_once

static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

int backtrace_signal() { return SIGRTMIN + kBacktraceSignalOffset; }

// Async-signal-safe: lock-free atomics and backtrace(), which was called once
// before (prime_backtrace) so that it does not load libgcc_s here.
extern "C" void capture_backtrace_in_handler(int) {
  int saved_errno = errno;
  int expected = kRequested;
  if (capture_slot.state.compare_exchange_strong(expected, kWriting, std::memory_order_acquire)) {
    // Unwinding while an exception is in flight can deadlock in the unwinder.
    capture_slot.depth =
        std::uncaught_exceptions() == 0 ? ::backtrace(capture_slot.frames, kMaxBacktraceFrames) : 0;
    capture_slot.state.store(kDone, std::memory_order_release);
  }
  errno = saved_errno;
}

void prime_backtrace() {
  void* frames[1];
  ::backtrace(frames, 1);
}

// Installs the handler once per process; returns false if another handler
// already owns the signal.
bool install_backtrace_handler() {
  std::call_once(install_once, [] {
    struct sigaction previous {};
    if (sigaction(backtrace_signal(), nullptr, &previous) != 0) {
      return;
    }
    bool default_action = (previous.sa_flags & SA_SIGINFO) == 0 &&
                          (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN);
    if (!default_action) {
      module_logger("sluice.runtime")
          ->warn("stall monitor: signal SIGRTMIN+{} already has a handler; backtraces are off",
                 kBacktraceSignalOffset);
      return;
    }

    struct sigaction action {};
    action.sa_handler = capture_backtrace_in_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    handler_installed = sigaction(backtrace_signal(), &action, nullptr) == 0;
  });
  return handler_installed;
}

std::string describe_frame(void* address) {
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) {
    return fmt::format("{}", address);
  }

  auto module_offset = reinterpret_cast<std::uintptr_t>(address) -
                       reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  std::string module = info.dli_fname;
  if (info.dli_sname == nullptr) {
    return fmt::format("{} ({}+{:#x})", address, module, module_offset);
  }

  int status = 0;
  char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
  std::string symbol = status == 0 && demangled != nullptr ? demangled : info.dli_sname;
  std::free(demangled);
  auto symbol_offset = reinterpret_cast<std::uintptr_t>(address) -
                       reinterpret_cast<std::uintptr_t>(info.dli_saddr);
  return fmt::format("{} {}+{:#x} ({}+{:#x})", address, symbol, symbol_offset, module, module_offset);
}

// Signals `thread` and returns its symbolized stack, or an empty vector when
// the thread did not run the handler in time.
std::vector<std::string> capture_thread_backtrace(pthread_t thread) {
  std::lock_guard lock(capture_mutex);
  capture_slot.state.store(kRequested, std::memory_order_release);
  if (pthread_kill(thread, backtrace_signal()) != 0) {
    capture_slot.state.store(kIdle, std::memory_order_relaxed);
    return {};
  }

  Clock::time_point give_up = Clock::now() + kBacktraceTimeout;
  while (capture_slot.state.load(std::memory_order_acquire) != kDone) {
    if (Clock::now() >= give_up) {
      int expected = kRequested;
      if (capture_slot.state.compare_exchange_strong(expected, kIdle)) {
        return {};  // the handler has not started and will now do nothing
      }
      // The handler is writing; it finishes in microseconds.
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::vector<std::string> frames;
  for (int i = kHandlerFrames; i < capture_slot.depth; ++i) {
    frames.push_back(fmt::format("#{} {}", i - kHandlerFrames, describe_frame(capture_slot.frames[i])));
  }
  capture_slot.state.store(kIdle, std::memory_order_release);
  return frames;
}

std::string task_label(const std::string& task) { return task.empty() ? "<unnamed>" : task; }

std::int64_t to_ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

StallMonitorOptions validated(StallMonitorOptions options) {
  if (options.use_environment && StallMonitor::async_debug_requested()) {
    options.slow_callback_threshold = std::min(options.slow_callback_threshold, kAsyncDebugThreshold);
    options.capture_backtrace = true;
  }

  if (options.slow_callback_threshold <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument(fmt::format("StallMonitor: slow_callback_threshold must be above 0 ms, got {} ms",
                                            options.slow_callback_threshold.count()));
  }
  if (options.heartbeat_interval <= std::chrono::milliseconds::zero() ||
      options.heartbeat_interval >= options.slow_callback_threshold) {
    throw std::invalid_argument(fmt::format(
        "StallMonitor: heartbeat_interval must be above 0 ms and below slow_callback_threshold "
        "({} ms), got {} ms",
        options.slow_callback_threshold.count(), options.heartbeat_interval.count()));
  }
  if (options.report_burst == 0 || options.report_interval <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument(fmt::format(
        "StallMonitor: report_burst must be at least 1 and report_interval above 0 ms, got {} and {} ms",
        options.report_burst, options.report_interval.count()));
  }
  return options;
}

double reports_per_second(const StallMonitorOptions& options) {
  return 1000.0 / static_cast<double>(options.report_interval.count());
}

}  // namespace

// State shared between the monitor and its heartbeat handlers. The handlers
// check `stopped` under `mutex` before touching the monitor, so a handler
// that runs after stop() or after the monitor is destroyed does nothing.
struct StallMonitor::Heartbeat {
  std::mutex mutex;
  bool stopped = true;  // guarded by mutex

  // Time of the latest beat (steady clock ticks), 0 before the first.
  std::atomic<Clock::rep> last_beat{0};
  // The loop thread, set by the first beat.
  std::atomic<RunningTaskName*> task_name{nullptr};
  std::atomic<pthread_t> loop_thread{};
};

bool StallMonitor::async_debug_requested() {
  const char* value = std::getenv("SLUICE_ASYNC_DEBUG");
  return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
}

StallMonitor::StallMonitor(boost::asio::io_context& loop, StallMonitorOptions options)
    : loop_(loop),
      options_(validated(std::move(options))),
      heartbeat_(std::make_shared<Heartbeat>()),
      timer_(loop),
      report_limit_(reports_per_second(options_), options_.report_burst) {}

StallMonitor::~StallMonitor() { stop(); }

void StallMonitor::start() {
  std::lock_guard lifecycle(lifecycle_mutex_);
  if (watchdog_.joinable()) {
    return;
  }

  if (options_.capture_backtrace) {
    prime_backtrace();
    if (!install_backtrace_handler()) {
      options_.capture_backtrace = false;
    }
  }

  heartbeat_->last_beat.store(0, std::memory_order_relaxed);
  heartbeat_->task_name.store(nullptr, std::memory_order_relaxed);
  {
    std::lock_guard lock(heartbeat_->mutex);
    heartbeat_->stopped = false;
    arm_heartbeat();
  }
  {
    std::lock_guard lock(watchdog_mutex_);
    stop_requested_ = false;
  }
  watchdog_ = std::thread([this] { run_watchdog(); });

  module_logger("sluice.runtime")
      ->info("stall monitor started loop={} threshold_ms={} heartbeat_ms={} backtrace={}",
             options_.loop_name, options_.slow_callback_threshold.count(),
             options_.heartbeat_interval.count(), options_.capture_backtrace);
}

void StallMonitor::stop() {
  std::lock_guard lifecycle(lifecycle_mutex_);
  if (watchdog_.joinable()) {
    {
      std::lock_guard lock(watchdog_mutex_);
      stop_requested_ = true;
    }
    watchdog_wake_.notify_all();
    watchdog_.join();
  }

  std::lock_guard lock(heartbeat_->mutex);
  if (heartbeat_->stopped) {
    return;
  }
  heartbeat_->stopped = true;
  timer_.cancel();
  module_logger("sluice.runtime")
      ->debug("stall monitor stopped loop={} stalls={}", options_.loop_name, stalls_total());
}

// Called with heartbeat_->mutex held.
void StallMonitor::arm_heartbeat() {
  timer_.expires_after(options_.heartbeat_interval);
  timer_.async_wait([this, heartbeat = heartbeat_](boost::system::error_code ec) {
    if (ec == boost::asio::error::operation_aborted) {
      return;
    }

    heartbeat->last_beat.store(Clock::now().time_since_epoch().count(), std::memory_order_release);
    if (heartbeat->task_name.load(std::memory_order_relaxed) == nullptr) {
      heartbeat->loop_thread.store(pthread_self(), std::memory_order_relaxed);
      heartbeat->task_name.store(&RunningTaskName::for_this_thread(), std::memory_order_release);
    }

    std::lock_guard lock(heartbeat->mutex);
    if (!heartbeat->stopped) {
      arm_heartbeat();
    }
  });
}

void StallMonitor::run_watchdog() {
  pthread_setname_np(pthread_self(), kWatchdogThreadName);
  const Clock::duration interval = options_.heartbeat_interval;
  const Clock::duration threshold = options_.slow_callback_threshold;

  // The beat a detected stall belongs to (0: none), and what is needed to
  // log its end.
  Clock::rep stalled_beat = 0;
  bool stall_reported = false;
  std::string stalled_task;

  std::unique_lock lock(watchdog_mutex_);
  while (!stop_requested_) {
    Clock::rep beat = heartbeat_->last_beat.load(std::memory_order_acquire);
    if (beat == 0) {
      watchdog_wake_.wait_for(lock, interval);  // the loop has not run the first beat yet
      continue;
    }
    Clock::time_point due = Clock::time_point(Clock::duration(beat)) + interval;

    if (beat == stalled_beat) {
      watchdog_wake_.wait_for(lock, interval);  // still blocked: poll for the next beat
      continue;
    }
    if (stalled_beat != 0) {
      Clock::time_point stalled_due = Clock::time_point(Clock::duration(stalled_beat)) + interval;
      if (stall_reported && options_.log_unblocked) {
        module_logger("sluice.runtime")
            ->info("event loop unblocked loop={} task={} blocked_ms={}", options_.loop_name,
                   task_label(stalled_task), to_ms(Clock::time_point(Clock::duration(beat)) - stalled_due));
      }
      stalled_beat = 0;
    }

    Clock::time_point now = Clock::now();
    if (now < due + threshold) {
      watchdog_wake_.wait_until(lock, due + threshold);
      continue;
    }
    if (loop_.stopped()) {
      watchdog_wake_.wait_for(lock, interval);
      continue;
    }

    // The beat has not moved for a whole threshold past its due time.
    stalled_beat = beat;
    RunningTaskName* names = heartbeat_->task_name.load(std::memory_order_acquire);
    stalled_task = names != nullptr ? names->snapshot() : std::string();
    lock.unlock();
    stall_reported = report_stall(now - due, stalled_task);
    lock.lock();
  }
}

bool StallMonitor::report_stall(Clock::duration blocked, std::string task) {
  std::uint64_t number = stalls_total_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (!report_limit_.try_acquire(Clock::now())) {
    ++suppressed_since_report_;
    suppressed_total_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  StallReport report{
      .task = std::move(task),
      .blocked_for = std::chrono::duration_cast<std::chrono::milliseconds>(blocked),
      .stall_number = number,
      .suppressed = std::exchange(suppressed_since_report_, 0),
      .backtrace = {},
  };
  if (options_.capture_backtrace) {
    report.backtrace = capture_thread_backtrace(heartbeat_->loop_thread.load(std::memory_order_relaxed));
  }

  auto logger = module_logger("sluice.runtime");
  std::string stack;
  for (const std::string& frame : report.backtrace) {
    stack += "\n    ";
    stack += frame;
  }
  logger->warn("event loop blocked loop={} task={} blocked_ms={} stall={} suppressed={}{}",
               options_.loop_name, task_label(report.task), report.blocked_for.count(),
               report.stall_number, report.suppressed, stack);

  if (!options_.on_stall) {
    return true;
  }
  try {
    options_.on_stall(report);
  } catch (const std::exception& e) {
    logger->error("stall monitor: on_stall callback failed loop={} error={}", options_.loop_name,
                  e.what());
  }
  return true;
}

}  // namespace sluice::runtime
