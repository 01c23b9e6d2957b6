#pragma once

#include <memory>
#include <stdexcept>
#include <utility>

namespace sluice::telegram {

/// A heap-allocated value that may be empty, with value semantics: copying
/// a Box copies the value and `==` compares values.
///
/// Generated types use it where a type contains itself
/// (Message::reply_to_message, RichTextBold::text), so that the struct has
/// a finite size, and for every optional field of an object type in the
/// types Telegram sends, so that an absent field costs one pointer. Its
/// interface follows std::optional: an empty Box is an absent optional
/// field. Moving from a Box leaves it empty.
///
/// T may be incomplete where Box<T> is declared; it must be complete where
/// a Box<T> is constructed, copied, compared or destroyed.
template <class T>
class Box {
 public:
  using value_type = T;

  Box() noexcept = default;

  /// Holds `value`; implicit so that `.reply_to_message = message` reads as
  /// it does for std::optional.
  Box(T value)  // NOLINT(google-explicit-constructor)
      : value_(std::make_unique<T>(std::move(value))) {}

  Box(const Box& other) : value_(other.value_ ? std::make_unique<T>(*other.value_) : nullptr) {}
  Box(Box&& other) noexcept = default;

  Box& operator=(const Box& other) {
    if (this != &other) {
      value_ = other.value_ ? std::make_unique<T>(*other.value_) : nullptr;
    }
    return *this;
  }
  Box& operator=(Box&& other) noexcept = default;

  ~Box() = default;

  [[nodiscard]] bool has_value() const noexcept { return value_ != nullptr; }
  explicit operator bool() const noexcept { return has_value(); }

  /// Requires has_value().
  T& operator*() noexcept { return *value_; }
  const T& operator*() const noexcept { return *value_; }
  T* operator->() noexcept { return value_.get(); }
  const T* operator->() const noexcept { return value_.get(); }

  /// Throws std::logic_error when the Box is empty.
  T& value() {
    check_not_empty();
    return *value_;
  }
  const T& value() const {
    check_not_empty();
    return *value_;
  }

  /// Replaces the held value with one built from `args` and returns it.
  template <class... Args>
  T& emplace(Args&&... args) {
    value_ = std::make_unique<T>(std::forward<Args>(args)...);
    return *value_;
  }

  void reset() noexcept { value_.reset(); }

  friend bool operator==(const Box& lhs, const Box& rhs) {
    if (!lhs.value_ || !rhs.value_) {
      return !lhs.value_ && !rhs.value_;
    }
    return *lhs.value_ == *rhs.value_;
  }

 private:
  void check_not_empty() const {
    if (!value_) {
      throw std::logic_error("sluice::telegram::Box::value() called on an empty Box");
    }
  }

  std::unique_ptr<T> value_;
};

}  // namespace sluice::telegram
