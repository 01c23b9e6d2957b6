#pragma once

// Conversation state storages: where a bot keeps "waiting for the email"
// and the data collected so far, per chat and user, across updates and
// restarts.
//
//   sluice::fsm::MemoryStorage storage;                  // tests, one process
//   sluice::fsm::SqlStorage storage(database);           // SQLite or PostgreSQL
//   sluice::fsm::RedisStorage storage(redis_client);     // several processes
//
// See docs/conversations.md for the choice between them.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <sluice/runtime/task_set.hpp>

namespace sluice::db {
class Database;
}

namespace sluice::redis {
class Client;
class Script;
}  // namespace sluice::redis

namespace sluice::fsm {

namespace detail {
class KeyLockTable;
struct LockRenewal;
}  // namespace detail

/// The parts of a conversation key, chosen per bot.
enum class KeyStrategy : std::uint8_t {
  /// One conversation per user in each chat (the default): two members of
  /// a group each have their own.
  chat_and_user,
  /// As chat_and_user, and each forum topic of a chat has its own.
  chat_and_user_in_topic,
  /// One conversation per chat, shared by all its members.
  chat,
  /// One conversation per user, shared by every chat the user writes in.
  user,
};

/// The identity of one conversation.
///
/// String form (`to_string`, the storage key): `<bot_id>:<chat_id>:<user_id>`
/// followed by `:<thread_id>` when the thread is set, all in decimal, for
/// example `123456:-100987:42` or `123456:-100987:42:7`.
struct StorageKey {
  std::int64_t bot_id = 0;
  std::int64_t chat_id = 0;
  std::int64_t user_id = 0;
  std::optional<std::int64_t> thread_id{};

  std::string to_string() const;
  /// Parses the string form; nullopt when `text` is not one.
  static std::optional<StorageKey> parse(std::string_view text);

  friend bool operator==(const StorageKey&, const StorageKey&) = default;
};

/// Builds the key of an update's conversation under `strategy` from its
/// chat, user and forum topic. A missing chat is replaced by the user, and
/// a missing user by the chat, because an inline query has no chat and a
/// channel post no user. Returns nullopt when both are missing. The chat
/// strategy stores the chat id as user id, and the user strategy the user
/// id as chat id, so that every key names one chat and one user.
std::optional<StorageKey> make_key(KeyStrategy strategy, std::int64_t bot_id,
                                   std::optional<std::int64_t> chat_id,
                                   std::optional<std::int64_t> user_id,
                                   std::optional<std::int64_t> thread_id = std::nullopt);

/// The stored state of one conversation. An empty `state` means the
/// conversation is in no state; `data` may still hold values.
struct StateRecord {
  std::string state{};
  boost::json::object data{};

  friend bool operator==(const StateRecord&, const StateRecord&) = default;
};

/// Thrown when a key's lock is not acquired in time (RedisStorage).
/// `what()` names the lock key, the wait and the lock's time to live.
class LockTimeout : public std::runtime_error {
 public:
  LockTimeout(std::string lock_key, const std::string& message);
  const std::string& lock_key() const noexcept { return lock_key_; }

 private:
  std::string lock_key_;
};

/// The exclusive lock of one conversation key, released when destroyed.
///
/// Move-only. An empty lock (default-constructed or moved-from) releases
/// nothing. `release()` releases now and reports errors. The destructor
/// releases without waiting, also when the holder was cancelled or threw:
/// a Redis lock is then deleted by a background task of its storage. The
/// storage must outlive its locks; release them on the storage's loop.
class KeyLock {
 public:
  /// A storage's part of a held lock. Its destructor releases the lock
  /// without waiting when `release` did not run.
  class Holder {
   public:
    virtual ~Holder() = default;
    /// Releases the lock and waits until it is released.
    virtual boost::asio::awaitable<void> release() = 0;
  };

  KeyLock() noexcept = default;
  explicit KeyLock(std::unique_ptr<Holder> holder) noexcept : holder_(std::move(holder)) {}
  KeyLock(KeyLock&&) noexcept = default;
  KeyLock& operator=(KeyLock&&) noexcept = default;
  KeyLock(const KeyLock&) = delete;
  KeyLock& operator=(const KeyLock&) = delete;
  ~KeyLock() = default;

  /// Releases the lock and waits until the storage confirms it. The lock
  /// is empty afterwards, also when this throws the storage's errors. A
  /// Redis lock that could not be deleted expires after its time to live.
  boost::asio::awaitable<void> release();

  explicit operator bool() const noexcept { return holder_ != nullptr; }

 private:
  std::unique_ptr<Holder> holder_;
};

/// A store of conversation states with per-key locks.
///
/// Every operation runs on the caller's executor, which must be the one
/// the storage's other users run on (one thread). Cancellation: each
/// operation may throw operation_aborted at a co_await; a write cancelled
/// in flight may or may not have been applied. The storage must outlive
/// the operations and locks it returned.
class Storage {
 public:
  virtual ~Storage() = default;

  /// Returns the record of `key`, or nullopt when there is none or it has
  /// expired.
  virtual boost::asio::awaitable<std::optional<StateRecord>> get(StorageKey key) = 0;

  /// Stores `record` under `key`, replacing what was there. With a `ttl`
  /// the record expires that long after this call; without one it never
  /// expires.
  virtual boost::asio::awaitable<void> set(StorageKey key, StateRecord record,
                                           std::optional<std::chrono::milliseconds> ttl) = 0;

  /// Removes the record of `key`, if any.
  virtual boost::asio::awaitable<void> clear(StorageKey key) = 0;

  /// Waits for the exclusive lock of `key` and returns it. Waiters of one
  /// process are served in FIFO order. A cancelled waiter takes no lock.
  /// Reads and writes do not check the lock: it orders the users that
  /// take it.
  virtual boost::asio::awaitable<KeyLock> lock(StorageKey key) = 0;

  /// Moves every record of `old_chat_id` (of bot `bot_id`) to
  /// `new_chat_id`, as when a group becomes a supergroup. A record that
  /// already exists under the new key is kept and the old one dropped.
  /// Returns the number of records moved.
  virtual boost::asio::awaitable<std::size_t> move_chat(std::int64_t bot_id, std::int64_t old_chat_id,
                                                        std::int64_t new_chat_id) = 0;

  /// Finishes background work (lock releases) and writes what is
  /// buffered. Call once before destroying the storage.
  virtual boost::asio::awaitable<void> close() = 0;
};

/// Settings of MemoryStorage.
struct MemoryStorageOptions {
  /// Records checked for expiry on each `set`, so that expired records are
  /// removed even when they are never read again. Default 16.
  std::size_t sweep_batch = 16;
  /// The clock for expiry; empty uses std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> clock{};
};

/// A storage in process memory, for tests and single-process bots whose
/// conversations may be lost on restart.
///
/// Expiry: an expired record is dropped when read, and every `set` checks
/// the next `sweep_batch` records in key order. Locks: per key, FIFO, and
/// an entry exists only while someone holds or waits for that key.
/// Not thread-safe: use it on one thread.
class MemoryStorage final : public Storage {
 public:
  explicit MemoryStorage(MemoryStorageOptions options = {});
  ~MemoryStorage() override;
  MemoryStorage(const MemoryStorage&) = delete;
  MemoryStorage& operator=(const MemoryStorage&) = delete;

  boost::asio::awaitable<std::optional<StateRecord>> get(StorageKey key) override;
  boost::asio::awaitable<void> set(StorageKey key, StateRecord record,
                                   std::optional<std::chrono::milliseconds> ttl) override;
  boost::asio::awaitable<void> clear(StorageKey key) override;
  boost::asio::awaitable<KeyLock> lock(StorageKey key) override;
  boost::asio::awaitable<std::size_t> move_chat(std::int64_t bot_id, std::int64_t old_chat_id,
                                                std::int64_t new_chat_id) override;
  boost::asio::awaitable<void> close() override;

  /// Records stored, expired ones not yet removed included.
  std::size_t size() const noexcept { return records_.size(); }
  /// Keys with a lock held or awaited.
  std::size_t lock_entries() const noexcept;

 private:
  struct Entry {
    StorageKey key;
    StateRecord record;
    std::optional<std::chrono::steady_clock::time_point> expires_at;
  };

  std::chrono::steady_clock::time_point now() const;
  void sweep(std::chrono::steady_clock::time_point now);

  MemoryStorageOptions options_;
  std::map<std::string, Entry> records_;
  std::string sweep_cursor_;
  std::unique_ptr<detail::KeyLockTable> locks_;
};

/// Settings of SqlStorage.
struct SqlStorageOptions {
  /// The clock for expiry; empty uses std::chrono::system_clock::now.
  /// Expiry times are stored as milliseconds since the Unix epoch.
  std::function<std::chrono::system_clock::time_point()> clock{};
};

/// A storage in the table `sluice_fsm_state` of a SQLite or PostgreSQL
/// database (see `create_tables`), so conversations survive restarts.
///
/// Locks are per key inside this process only. Two processes that share
/// the database do not exclude each other; use RedisStorage for that.
/// No connection is held between operations, so a lock held while a
/// handler runs keeps no pooled connection busy.
///
/// Expiry: an expired row reads as absent and is deleted then;
/// `delete_expired` removes the rest. The database must outlive the
/// storage.
class SqlStorage final : public Storage {
 public:
  explicit SqlStorage(db::Database& database, SqlStorageOptions options = {});
  ~SqlStorage() override;
  SqlStorage(const SqlStorage&) = delete;
  SqlStorage& operator=(const SqlStorage&) = delete;

  /// Creates the table and its index when missing.
  boost::asio::awaitable<void> create_tables();

  boost::asio::awaitable<std::optional<StateRecord>> get(StorageKey key) override;
  boost::asio::awaitable<void> set(StorageKey key, StateRecord record,
                                   std::optional<std::chrono::milliseconds> ttl) override;
  boost::asio::awaitable<void> clear(StorageKey key) override;
  boost::asio::awaitable<KeyLock> lock(StorageKey key) override;
  /// Runs in one transaction.
  boost::asio::awaitable<std::size_t> move_chat(std::int64_t bot_id, std::int64_t old_chat_id,
                                                std::int64_t new_chat_id) override;
  boost::asio::awaitable<void> close() override;

  /// Deletes every expired row; returns how many. Call it now and then
  /// (hourly, for example) when many conversations end by expiry.
  boost::asio::awaitable<std::uint64_t> delete_expired();

  /// Keys with a lock held or awaited in this process.
  std::size_t lock_entries() const noexcept;

 private:
  std::int64_t now_ms() const;

  db::Database* database_;
  SqlStorageOptions options_;
  std::unique_ptr<detail::KeyLockTable> locks_;
};

/// Settings of RedisStorage.
struct RedisStorageOptions {
  /// Prefix of every key: states are `<prefix>:<key>`, locks
  /// `<prefix>:lock:<key>` (see StorageKey for `<key>`).
  std::string prefix = "sluice:fsm";
  /// Time to live of a lock: a lock whose holder died is free after this
  /// long. Default 30 s.
  std::chrono::milliseconds lock_ttl = std::chrono::seconds(30);
  /// True: a held lock's time to live is extended every lock_ttl / 3
  /// until it is released, so a handler may run longer than lock_ttl.
  /// False: lock_ttl must exceed the longest handler. Default true.
  bool renew_locks = true;
  /// How long `lock` waits for a lock held by another process before it
  /// throws LockTimeout. Keep it above lock_ttl so that the lock of a
  /// holder that died is taken instead of timing out. Default 35 s.
  std::chrono::milliseconds lock_timeout = std::chrono::seconds(35);
  /// First delay between attempts to take a lock held elsewhere. It
  /// doubles per attempt up to lock_retry_max, and each delay is drawn
  /// uniformly from [delay/2, delay]. Default 5 ms.
  std::chrono::milliseconds lock_retry_min = std::chrono::milliseconds(5);
  /// Largest delay between attempts. Default 200 ms.
  std::chrono::milliseconds lock_retry_max = std::chrono::milliseconds(200);
  /// Seed of the retry jitter; nullopt seeds from std::random_device.
  /// Lock tokens always come from std::random_device.
  std::optional<std::uint64_t> jitter_seed{};
  /// How long `close` waits for lock releases still in flight.
  std::chrono::milliseconds close_timeout = std::chrono::seconds(2);
};

/// A storage in Redis: each record is one string key holding
/// `{"state": ..., "data": {...}}`, written with `SET ... PX` when it has
/// a time to live.
///
/// Locks exclude every process that uses the same Redis and prefix: a
/// lock is `SET <prefix>:lock:<key> <random token> NX PX lock_ttl`,
/// retried with jittered backoff until lock_timeout, extended while held
/// by a Lua compare-and-expire every lock_ttl / 3, and deleted by a Lua
/// compare-and-delete, so a holder whose lock expired never extends or
/// deletes another's. Waiters of one process first queue on an in-process lock,
/// so a process does not compete with itself.
///
/// move_chat finds the old chat's records with SCAN (`MATCH
/// <prefix>:<bot_id>:<old_chat_id>:*`), which walks the whole keyspace:
/// fine for a rare migration, not for a hot path. Each record moves
/// atomically with its remaining time to live.
///
/// The client must outlive the storage; use both on the client's
/// executor. Call `close()` before destroying the storage.
class RedisStorage final : public Storage {
 public:
  explicit RedisStorage(redis::Client& client, RedisStorageOptions options = {});
  ~RedisStorage() override;
  RedisStorage(const RedisStorage&) = delete;
  RedisStorage& operator=(const RedisStorage&) = delete;

  boost::asio::awaitable<std::optional<StateRecord>> get(StorageKey key) override;
  boost::asio::awaitable<void> set(StorageKey key, StateRecord record,
                                   std::optional<std::chrono::milliseconds> ttl) override;
  boost::asio::awaitable<void> clear(StorageKey key) override;
  /// Errors: LockTimeout after lock_timeout, the client's errors.
  boost::asio::awaitable<KeyLock> lock(StorageKey key) override;
  boost::asio::awaitable<std::size_t> move_chat(std::int64_t bot_id, std::int64_t old_chat_id,
                                                std::int64_t new_chat_id) override;
  /// Waits up to close_timeout for lock releases in flight and for the
  /// locks still held to be released, then cancels the rest (those locks
  /// expire after lock_ttl).
  boost::asio::awaitable<void> close() override;

  /// The Redis key of a record and of its lock.
  std::string state_key(const StorageKey& key) const;
  std::string lock_key(const StorageKey& key) const;

  /// Keys with a lock held or awaited in this process.
  std::size_t lock_entries() const noexcept;

 private:
  class RedisLockHolder;

  std::string random_token();
  // Starts the task that extends a lock just taken; nullptr when
  // renew_locks is false or the storage is closed.
  std::shared_ptr<detail::LockRenewal> start_renewal(const std::string& lock_key, const std::string& token);

  redis::Client* client_;
  RedisStorageOptions options_;
  std::unique_ptr<redis::Script> release_script_;
  std::unique_ptr<redis::Script> renew_script_;
  std::unique_ptr<redis::Script> move_script_;
  std::unique_ptr<detail::KeyLockTable> locks_;
  std::random_device token_source_;
  std::mt19937_64 jitter_;
  runtime::TaskSet releases_;
};

}  // namespace sluice::fsm
