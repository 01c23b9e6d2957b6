#pragma once

#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

namespace sluice::runtime {

/// Turns SIGINT and SIGTERM into a graceful shutdown on the event loop.
///
/// The first signal is logged ("sluice.runtime", INFO), calls `on_stop`
/// once and completes every `wait()`. The application then closes intake,
/// drains its tasks, joins the blocking pool and lets the loop finish. A
/// second signal during that shutdown is logged (WARNING) and calls
/// `on_force`; without one it ends the process at once with
/// `std::_Exit(128 + signal number)`, the shell convention (130 for SIGINT,
/// 143 for SIGTERM), skipping destructors and atexit handlers. Later
/// signals call `on_force` again.
///
/// While listening, the object keeps the loop's `run()` from returning, so
/// call `cancel()` (or destroy the object) as part of shutdown.
///
/// Asio installs the process-wide signal handlers while any `signal_set`
/// listens for a signal and restores the default action after the last one
/// stops. Only one object of this type should exist per process.
///
/// Thread safety: none. Construct, use and destroy it on the loop thread
/// (or after the loop has stopped). Callbacks run on `executor`.
class ShutdownSignals {
 public:
  /// Called with the signal number.
  using Callback = std::function<void(int signal_number)>;

  /// Starts listening on `executor`. `on_stop` may be empty when the
  /// application uses `wait()` instead. An exception thrown by `on_stop` is
  /// logged at ERROR and does not stop the listening.
  ShutdownSignals(boost::asio::any_io_executor executor, Callback on_stop, Callback on_force = {});
  ~ShutdownSignals();

  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  /// Waits for the first signal and returns its number; returns at once if
  /// it has already arrived. Several coroutines may wait.
  ///
  /// Cancellation: a cancelled wait throws `system_error(operation_aborted)`
  /// unless the signal has arrived. Lifetimes: the object must outlive the
  /// wait. Executor: completes on the executor given to the constructor.
  boost::asio::awaitable<int> wait();

  /// Stops listening. A pending `wait()` throws `system_error(operation_aborted)`.
  /// Idempotent.
  void cancel();

  /// True once the first signal has arrived.
  bool stop_requested() const noexcept { return first_signal_ != 0; }
  /// The first signal received, or 0.
  int first_signal() const noexcept { return first_signal_; }
  /// Signals received so far.
  int signals_received() const noexcept { return signals_received_; }

 private:
  void arm();
  void on_signal(int signal_number);

  boost::asio::signal_set signals_;
  // Never expires: cancelling it wakes every wait() once a signal arrives.
  boost::asio::steady_timer stop_event_;
  Callback on_stop_;
  Callback on_force_;
  // Cleared by the destructor, so a signal handler already queued on the
  // loop does not touch a destroyed object.
  std::shared_ptr<bool> alive_;
  int first_signal_ = 0;
  int signals_received_ = 0;
  bool cancelled_ = false;
};

}  // namespace sluice::runtime
