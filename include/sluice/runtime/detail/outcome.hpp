#pragma once

#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

namespace sluice::runtime::detail {

/// The result of running a function once: nothing yet, a value, or an
/// exception. It carries a result between threads or out of a coroutine
/// without requiring `T` to be default-constructible (Asio's `co_spawn` and
/// completion signatures with a value otherwise do).
template <class T>
class Outcome {
 public:
  static_assert(!std::is_reference_v<T>, "Outcome<T> cannot hold a reference");

  bool has_value() const noexcept { return state_.index() == 1; }
  bool has_exception() const noexcept { return state_.index() == 2; }
  bool empty() const noexcept { return state_.index() == 0; }

  void set_value(T value) { state_.template emplace<1>(std::move(value)); }
  void set_exception(std::exception_ptr error) { state_.template emplace<2>(std::move(error)); }

  /// Returns the stored exception, or null when there is none.
  std::exception_ptr exception() const noexcept {
    return has_exception() ? std::get<2>(state_) : nullptr;
  }

  /// Moves the value out, or rethrows the stored exception.
  /// REQUIRES: not `empty()`.
  T take() {
    if (has_exception()) {
      std::rethrow_exception(std::get<2>(state_));
    }
    return std::move(std::get<1>(state_));
  }

  /// Calls `fn` and stores its result or the exception it throws, in place,
  /// so `T` needs no assignment operator.
  template <class F>
  void store_result_of(F&& fn) noexcept {
    try {
      state_.template emplace<1>(std::forward<F>(fn)());
    } catch (...) {
      set_exception(std::current_exception());
    }
  }

 private:
  std::variant<std::monostate, T, std::exception_ptr> state_;
};

template <>
class Outcome<void> {
 public:
  bool has_value() const noexcept { return state_ == State::kValue; }
  bool has_exception() const noexcept { return state_ == State::kException; }
  bool empty() const noexcept { return state_ == State::kEmpty; }

  void set_value() noexcept { state_ = State::kValue; }
  void set_exception(std::exception_ptr error) noexcept {
    error_ = std::move(error);
    state_ = State::kException;
  }

  std::exception_ptr exception() const noexcept { return error_; }

  void take() {
    if (has_exception()) {
      std::rethrow_exception(error_);
    }
  }

  template <class F>
  void store_result_of(F&& fn) noexcept {
    try {
      std::forward<F>(fn)();
      set_value();
    } catch (...) {
      set_exception(std::current_exception());
    }
  }

 private:
  enum class State { kEmpty, kValue, kException };
  State state_ = State::kEmpty;
  std::exception_ptr error_;
};

}  // namespace sluice::runtime::detail
