#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/asio/execution.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/require.hpp>

namespace sluice::runtime {

/// The name of the task that runs on a thread right now, readable from any
/// thread while that thread is busy or blocked.
///
/// A stall monitor is the reader: the loop thread hands
/// `RunningTaskName::for_this_thread()` to a watchdog thread, which calls
/// `snapshot()` when the loop stops making progress. The owning thread is the
/// only writer.
///
/// `set()` and `clear()` never allocate or block. They copy the name into a
/// fixed buffer under a sequence lock, so a reader either sees a whole name or
/// retries. Names longer than `kMaxLength` bytes are cut at that length
/// (possibly inside a UTF-8 sequence).
///
/// Lifetime: the object is thread-local, so a reader must stop using it before
/// its thread exits.
class RunningTaskName {
 public:
  /// Maximum stored name length, in bytes.
  static constexpr std::size_t kMaxLength = 63;

  /// Returns the object of the calling thread.
  static RunningTaskName& for_this_thread() noexcept;

  /// Stores `name` (cut to `kMaxLength` bytes). Owning thread only.
  void set(std::string_view name) noexcept;

  /// Marks that no task runs. Owning thread only.
  void clear() noexcept { set({}); }

  /// Returns a copy of the current name, or "" when no task runs. Callable
  /// from any thread. NOTE: if the owner rewrites the name continuously for
  /// all retries, the result is "" rather than a torn name.
  std::string snapshot() const;

  /// Sets a name for the lifetime of the scope and restores the previous one
  /// afterwards, so scopes nest. Owning thread only.
  class Scope {
   public:
    explicit Scope(std::string_view name) noexcept;
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    RunningTaskName& owner_;
    std::array<char, kMaxLength> previous_{};
    std::size_t previous_length_ = 0;
  };

  RunningTaskName() = default;
  RunningTaskName(const RunningTaskName&) = delete;
  RunningTaskName& operator=(const RunningTaskName&) = delete;

 private:
  static constexpr std::size_t kWordCount = (kMaxLength + 7) / 8;

  // Reads the name without the sequence check; only the owning thread may
  // call it, because only that thread writes.
  std::size_t copy_own(char* out) const noexcept;

  // Odd while a write is in progress.
  std::atomic<std::uint32_t> sequence_{0};
  std::atomic<std::uint32_t> length_{0};
  // The bytes live in relaxed atomic words so that a concurrent read is not a
  // data race. The reader compares sequence numbers to detect a torn copy.
  std::array<std::atomic<std::uint64_t>, kWordCount> words_{};
};

/// An executor adapter that runs every function under a
/// `RunningTaskName::Scope` holding one task's name, then forwards to `Inner`.
///
/// A coroutine spawned on a `NamedExecutor` (directly or wrapped in an
/// `any_io_executor`) is resumed through it after every operation it awaits,
/// because completion handlers run on the coroutine's associated executor.
/// So each resumption is attributed to the task. Queries, requirements and
/// preferences go to `Inner`; requirements and preferences return a
/// `NamedExecutor` of the result with the same name.
///
/// Thread safety: as `Inner`. The name is shared and immutable.
template <typename Inner>
class NamedExecutor {
 public:
  using inner_executor_type = Inner;

  /// REQUIRES: `name` is not null.
  NamedExecutor(Inner inner, std::shared_ptr<const std::string> name) noexcept
      : inner_(std::move(inner)), name_(std::move(name)) {}

  const Inner& inner_executor() const noexcept { return inner_; }
  const std::string& name() const noexcept { return *name_; }
  const std::shared_ptr<const std::string>& shared_name() const noexcept { return name_; }

  template <typename Property>
    requires boost::asio::can_query<const Inner&, Property>::value
  decltype(auto) query(const Property& property) const
      noexcept(boost::asio::is_nothrow_query<const Inner&, Property>::value) {
    return boost::asio::query(inner_, property);
  }

  template <typename Property>
    requires boost::asio::can_require<const Inner&, Property>::value
  auto require(const Property& property) const {
    using Result = std::decay_t<typename boost::asio::require_result<const Inner&, Property>::type>;
    return NamedExecutor<Result>(boost::asio::require(inner_, property), name_);
  }

  template <typename Property>
    requires boost::asio::can_prefer<const Inner&, Property>::value
  auto prefer(const Property& property) const {
    using Result = std::decay_t<typename boost::asio::prefer_result<const Inner&, Property>::type>;
    return NamedExecutor<Result>(boost::asio::prefer(inner_, property), name_);
  }

  template <typename Function>
  void execute(Function&& function) const {
    inner_.execute(Runner<std::decay_t<Function>>{name_, std::forward<Function>(function)});
  }

  friend bool operator==(const NamedExecutor& a, const NamedExecutor& b) noexcept {
    return a.inner_ == b.inner_ && a.name_ == b.name_;
  }
  friend bool operator!=(const NamedExecutor& a, const NamedExecutor& b) noexcept {
    return !(a == b);
  }

 private:
  template <typename Function>
  struct Runner {
    std::shared_ptr<const std::string> name;
    Function function;

    void operator()() {
      RunningTaskName::Scope scope(*name);
      std::move(function)();
    }
  };

  Inner inner_;
  std::shared_ptr<const std::string> name_;
};

}  // namespace sluice::runtime
