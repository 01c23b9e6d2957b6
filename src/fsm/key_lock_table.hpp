#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include <sluice/fsm/storage.hpp>
#include <sluice/runtime/semaphore.hpp>

namespace sluice::fsm::detail {

/// Per-key exclusive locks of one process, in FIFO order per key. A key
/// has an entry (a one-permit Semaphore) only while its lock is held or
/// awaited, so memory does not grow with the keys ever locked.
///
/// Not thread-safe; the table must outlive its locks.
class KeyLockTable {
 public:
  class Lock;

  KeyLockTable() = default;
  KeyLockTable(const KeyLockTable&) = delete;
  KeyLockTable& operator=(const KeyLockTable&) = delete;

  /// Waits for the lock of `key`. Runs on the caller's executor.
  /// Cancellation: a cancelled waiter takes no lock and throws
  /// operation_aborted.
  boost::asio::awaitable<Lock> acquire(const std::string& key);

  /// Keys with a lock held or awaited.
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    Entry(boost::asio::any_io_executor executor, std::string entry_key)
        : semaphore(std::move(executor), 1, "fsm lock " + entry_key), key(std::move(entry_key)) {}

    runtime::Semaphore semaphore;
    std::string key;
    // Holders and waiters; the entry is erased when it drops to zero.
    std::size_t users = 0;
  };

  void leave(Entry* entry) noexcept;

  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
};

/// A held lock of a KeyLockTable; releases it when destroyed.
class KeyLockTable::Lock {
 public:
  Lock() noexcept = default;
  Lock(Lock&& other) noexcept;
  Lock& operator=(Lock&& other) noexcept;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  ~Lock() { release(); }

  /// Hands the lock to the next waiter, if any. No effect when empty.
  void release() noexcept;

  explicit operator bool() const noexcept { return entry_ != nullptr; }

 private:
  friend class KeyLockTable;

  KeyLockTable* table_ = nullptr;
  Entry* entry_ = nullptr;
  runtime::Permit permit_;
};

/// The KeyLock of a storage whose only lock is a KeyLockTable's.
class LocalLockHolder final : public KeyLock::Holder {
 public:
  explicit LocalLockHolder(KeyLockTable::Lock lock) noexcept : lock_(std::move(lock)) {}

  boost::asio::awaitable<void> release() override {
    lock_.release();
    co_return;
  }

 private:
  KeyLockTable::Lock lock_;
};

}  // namespace sluice::fsm::detail
