#include <sluice/runtime/task_name.hpp>

#include <algorithm>
#include <cstring>

namespace sluice::runtime {
namespace {

// A reader gives up after this many torn reads. The writer's critical section
// is a few stores, so a reader only loses this many times in a row if the
// owner switches tasks continuously, and then any name would be stale anyway.
constexpr int kSnapshotAttempts = 1000;

}  // namespace

RunningTaskName& RunningTaskName::for_this_thread() noexcept {
  // Constant-initialised (the members are atomics with constexpr
  // constructors), so access needs no guard.
  static thread_local RunningTaskName instance;
  return instance;
}

void RunningTaskName::set(std::string_view name) noexcept {
  std::size_t length = std::min(name.size(), kMaxLength);
  std::array<char, kWordCount * 8> bytes{};
  if (length > 0) {
    std::memcpy(bytes.data(), name.data(), length);
  }

  std::uint32_t sequence = sequence_.load(std::memory_order_relaxed);
  sequence_.store(sequence + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);

  length_.store(static_cast<std::uint32_t>(length), std::memory_order_relaxed);
  for (std::size_t i = 0; i * 8 < length; ++i) {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes.data() + i * 8, 8);
    words_[i].store(word, std::memory_order_relaxed);
  }

  sequence_.store(sequence + 2, std::memory_order_release);
}

std::string RunningTaskName::snapshot() const {
  std::array<char, kWordCount * 8> bytes{};
  for (int attempt = 0; attempt < kSnapshotAttempts; ++attempt) {
    std::uint32_t before = sequence_.load(std::memory_order_acquire);
    if (before % 2 != 0) {
      continue;
    }

    std::size_t length = std::min<std::size_t>(length_.load(std::memory_order_relaxed), kMaxLength);
    for (std::size_t i = 0; i * 8 < length; ++i) {
      std::uint64_t word = words_[i].load(std::memory_order_relaxed);
      std::memcpy(bytes.data() + i * 8, &word, 8);
    }

    std::atomic_thread_fence(std::memory_order_acquire);
    if (sequence_.load(std::memory_order_relaxed) == before) {
      return std::string(bytes.data(), length);
    }
  }
  return {};
}

std::size_t RunningTaskName::copy_own(char* out) const noexcept {
  std::size_t length = length_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i * 8 < length; ++i) {
    std::uint64_t word = words_[i].load(std::memory_order_relaxed);
    std::size_t count = std::min<std::size_t>(8, length - i * 8);
    std::memcpy(out + i * 8, &word, count);
  }
  return length;
}

RunningTaskName::Scope::Scope(std::string_view name) noexcept : owner_(for_this_thread()) {
  previous_length_ = owner_.copy_own(previous_.data());
  owner_.set(name);
}

RunningTaskName::Scope::~Scope() {
  owner_.set(std::string_view(previous_.data(), previous_length_));
}

}  // namespace sluice::runtime
