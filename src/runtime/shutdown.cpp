#include <sluice/runtime/shutdown.hpp>

#include <csignal>
#include <cstdlib>
#include <exception>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <sluice/runtime/logging.hpp>

namespace sluice::runtime {
namespace {

// The shell reports a process ended by signal N with status 128 + N.
constexpr int kSignalExitBase = 128;

std::string signal_name(int signal_number) {
  switch (signal_number) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return std::to_string(signal_number);
  }
}

}  // namespace

ShutdownSignals::ShutdownSignals(boost::asio::any_io_executor executor, Callback on_stop,
                                 Callback on_force)
    : signals_(executor, SIGINT, SIGTERM),
      stop_event_(executor, boost::asio::steady_timer::time_point::max()),
      on_stop_(std::move(on_stop)),
      on_force_(std::move(on_force)),
      alive_(std::make_shared<bool>(true)) {
  arm();
}

ShutdownSignals::~ShutdownSignals() {
  *alive_ = false;
  cancel();
}

void ShutdownSignals::cancel() {
  if (cancelled_) {
    return;
  }
  cancelled_ = true;

  boost::system::error_code ignored;
  signals_.cancel(ignored);
  signals_.clear(ignored);
  stop_event_.cancel();
}

boost::asio::awaitable<int> ShutdownSignals::wait() {
  if (stop_requested()) {
    co_return first_signal_;
  }
  if (cancelled_) {
    throw boost::system::system_error(boost::asio::error::operation_aborted,
                                      "ShutdownSignals::wait after cancel()");
  }

  co_await stop_event_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));

  // The event never expires, so it completes only when cancelled: by a
  // signal (then stop_requested() is true), by cancel(), or by the waiter's
  // own cancellation.
  if (!stop_requested()) {
    throw boost::system::system_error(boost::asio::error::operation_aborted,
                                      "ShutdownSignals::wait");
  }
  co_return first_signal_;
}

void ShutdownSignals::arm() {
  std::shared_ptr<bool> alive = alive_;
  signals_.async_wait([this, alive](boost::system::error_code ec, int signal_number) {
    if (!*alive || ec == boost::asio::error::operation_aborted) {
      return;
    }
    on_signal(signal_number);
    // A callback may have destroyed or cancelled this object.
    if (*alive && !cancelled_) {
      arm();
    }
  });
}

void ShutdownSignals::on_signal(int signal_number) {
  auto logger = module_logger("sluice.runtime");
  ++signals_received_;

  if (signals_received_ == 1) {
    first_signal_ = signal_number;
    logger->info("shutdown requested signal={}; a second signal forces exit",
                 signal_name(signal_number));
    stop_event_.cancel();
    if (!on_stop_) {
      return;
    }
    try {
      on_stop_(signal_number);
    } catch (const std::exception& e) {
      logger->error("shutdown stop handler failed signal={} error={}", signal_name(signal_number),
                    e.what());
    }
    return;
  }

  if (on_force_) {
    logger->warn("second shutdown signal signal={}; calling the force handler",
                 signal_name(signal_number));
    on_force_(signal_number);
    return;
  }
  logger->warn("second shutdown signal signal={}; exiting now with status {}",
               signal_name(signal_number), kSignalExitBase + signal_number);
  logger->flush();
  std::_Exit(kSignalExitBase + signal_number);
}

}  // namespace sluice::runtime
