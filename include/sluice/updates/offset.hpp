#pragma once

// The confirmation rule of long polling and the store that persists it.
//
// Telegram's getUpdates confirms every update whose update_id is below the
// `offset` it is given (https://core.telegram.org/bots/api#getupdates), so
// the offset may only move past an update once that update and every
// update received before it are handled. OffsetTracker computes that
// watermark over update_ids that need not be contiguous; OffsetStore keeps
// it across restarts, together with the updates that could not be parsed.
// A store with a journal also keeps received updates until they are
// handled, which lets the poller confirm them to Telegram once stored.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace sluice::db {
class Database;
}

namespace sluice::redis {
class Client;
}

namespace sluice::updates {

/// The watermark over received and handled update_ids. A pure state machine:
/// no I/O, no clock, no threads.
///
///     OffsetTracker tracker(stored_offset);     // ids below it are done
///     tracker.receive(7); tracker.receive(9);
///     tracker.handled(9);  // confirmed_offset() stays 7
///     tracker.handled(7);  // confirmed_offset() becomes 10
class OffsetTracker {
 public:
  /// Starts with every update_id below `start_offset` confirmed; std::nullopt
  /// when nothing is known (the first poll then passes no offset).
  explicit OffsetTracker(std::optional<std::int64_t> start_offset = std::nullopt);

  /// Records `update_id` as received and not yet handled. Returns false,
  /// recording nothing, for an id below the confirmed offset or at or below
  /// the highest id received so far: such an update was delivered before
  /// (Telegram resends unconfirmed updates) and is skipped.
  bool receive(std::int64_t update_id);

  /// Marks a received update as handled, whatever the outcome of its
  /// handler. Unknown ids are ignored.
  void handled(std::int64_t update_id);

  /// The offset to pass to getUpdates: the lowest update_id still being
  /// handled, or the highest id received plus 1 when none is. std::nullopt
  /// before anything is known.
  std::optional<std::int64_t> confirmed_offset() const noexcept;

  /// Updates received and not yet handled.
  std::size_t pending() const noexcept { return pending_.size(); }

  /// The highest update_id received, if any.
  std::optional<std::int64_t> highest_received() const noexcept { return highest_received_; }

 private:
  std::optional<std::int64_t> start_offset_;
  std::optional<std::int64_t> highest_received_;
  std::set<std::int64_t> pending_;
};

/// An update that could not be parsed, kept for inspection instead of
/// being handled.
struct DeadLetter {
  /// The update_id, when the JSON had a readable one.
  std::optional<std::int64_t> update_id{};
  /// The update exactly as received: JSON text.
  std::string raw_json{};
  /// The parse error, with the path of the offending value.
  std::string error{};
};

/// An update kept in a store's journal between receipt and handling.
struct JournalEntry {
  std::int64_t update_id = 0;
  /// The update exactly as received.
  std::string raw_json{};
};

/// Persists the confirmed offset of one bot and its dead letters, and
/// optionally a journal of received updates (see
/// LongPollingOptions::journal).
///
/// Implementations are called on the bot's event loop. The poller awaits
/// each call before the next, except `journal_remove` and `save`, which may
/// run while another call is in progress. Saves never overlap each other.
class OffsetStore {
 public:
  virtual ~OffsetStore() = default;

  /// Whether the store implements the journal calls below. The default
  /// implementations of those calls throw std::logic_error.
  virtual bool has_journal() const noexcept { return false; }

  /// Stores `entries` and the offset `next_offset` in one step: after a
  /// crash either both are stored or neither is.
  virtual boost::asio::awaitable<void> journal_append(std::vector<JournalEntry> entries,
                                                      std::int64_t next_offset);

  /// Removes the entries of handled updates. Unknown ids are ignored.
  virtual boost::asio::awaitable<void> journal_remove(std::vector<std::int64_t> update_ids);

  /// Returns every entry, lowest update_id first.
  virtual boost::asio::awaitable<std::vector<JournalEntry>> journal_load();

  /// Returns the stored offset, or std::nullopt when none was saved.
  virtual boost::asio::awaitable<std::optional<std::int64_t>> load() = 0;

  /// Stores `offset` (every update below it is handled), replacing the
  /// previous value.
  virtual boost::asio::awaitable<void> save(std::int64_t offset) = 0;

  /// Stores an update that could not be parsed.
  virtual boost::asio::awaitable<void> add_dead_letter(DeadLetter letter) = 0;
};

/// An OffsetStore in memory, for tests and bots that accept re-handling
/// after a restart. It may be shared by several Bot objects in sequence,
/// which then behave like one bot restarted.
///
/// Its journal lives in the process too, so a crash loses the updates it
/// holds, which Telegram already counts as delivered: use the journal with
/// this store in tests only.
class MemoryOffsetStore final : public OffsetStore {
 public:
  boost::asio::awaitable<std::optional<std::int64_t>> load() override;
  boost::asio::awaitable<void> save(std::int64_t offset) override;
  boost::asio::awaitable<void> add_dead_letter(DeadLetter letter) override;

  bool has_journal() const noexcept override { return true; }
  boost::asio::awaitable<void> journal_append(std::vector<JournalEntry> entries,
                                              std::int64_t next_offset) override;
  boost::asio::awaitable<void> journal_remove(std::vector<std::int64_t> update_ids) override;
  boost::asio::awaitable<std::vector<JournalEntry>> journal_load() override;

  std::optional<std::int64_t> offset() const noexcept { return offset_; }
  const std::vector<DeadLetter>& dead_letters() const noexcept { return dead_letters_; }
  /// The journal: update_id to the update as received.
  const std::map<std::int64_t, std::string>& journal() const noexcept { return journal_; }

 private:
  std::optional<std::int64_t> offset_;
  std::vector<DeadLetter> dead_letters_;
  std::map<std::int64_t, std::string> journal_;
};

/// An OffsetStore in a SQL database through sluice::db (SQLite or
/// PostgreSQL), with a journal. It uses three tables, created by
/// `create_tables()` if missing:
///
///     sluice_update_offset  (bot_id TEXT PRIMARY KEY, next_offset BIGINT NOT NULL)
///     sluice_dead_letters   (bot_id TEXT, seq BIGINT, update_id BIGINT, raw_json TEXT,
///                            error TEXT, PRIMARY KEY (bot_id, seq))
///     sluice_update_journal (bot_id TEXT, update_id BIGINT, raw_json TEXT,
///                            PRIMARY KEY (bot_id, update_id))
///
/// `bot_id` separates bots that share a database; use the numeric part of
/// the token, never the whole token. The Database must outlive the store.
class SqlOffsetStore final : public OffsetStore {
 public:
  SqlOffsetStore(db::Database& database, std::string bot_id);

  /// Creates the tables that do not exist. Call once before use.
  boost::asio::awaitable<void> create_tables();

  boost::asio::awaitable<std::optional<std::int64_t>> load() override;
  boost::asio::awaitable<void> save(std::int64_t offset) override;
  boost::asio::awaitable<void> add_dead_letter(DeadLetter letter) override;

  bool has_journal() const noexcept override { return true; }
  /// One transaction: a single INSERT of every entry and the offset upsert.
  boost::asio::awaitable<void> journal_append(std::vector<JournalEntry> entries,
                                              std::int64_t next_offset) override;
  boost::asio::awaitable<void> journal_remove(std::vector<std::int64_t> update_ids) override;
  boost::asio::awaitable<std::vector<JournalEntry>> journal_load() override;

  /// Returns the dead letters of this bot, oldest first.
  boost::asio::awaitable<std::vector<DeadLetter>> dead_letters();

 private:
  db::Database* database_;
  std::string bot_id_;
};

/// An OffsetStore in Redis, for bots whose state lives there, with a
/// journal. It uses three keys:
///
///     <prefix>:<bot_id>:offset        a string: the confirmed offset
///     <prefix>:<bot_id>:dead_letters  a list of JSON objects
///                                     {"update_id", "raw_json", "error"}, oldest first
///     <prefix>:<bot_id>:journal       a hash: update_id to the update as received
///
/// The journal is as durable as the server's persistence settings make it
/// (appendonly with fsync for a bot that must not lose updates).
///
/// `bot_id` separates bots that share a server; use the numeric part of the
/// token, never the whole token. The keys have no TTL. The Client must
/// outlive the store.
class RedisOffsetStore final : public OffsetStore {
 public:
  RedisOffsetStore(redis::Client& client, std::string bot_id, std::string prefix = "sluice:updates");

  boost::asio::awaitable<std::optional<std::int64_t>> load() override;
  boost::asio::awaitable<void> save(std::int64_t offset) override;
  boost::asio::awaitable<void> add_dead_letter(DeadLetter letter) override;

  bool has_journal() const noexcept override { return true; }
  /// One MULTI/EXEC: HSET of every entry and SET of the offset.
  boost::asio::awaitable<void> journal_append(std::vector<JournalEntry> entries,
                                              std::int64_t next_offset) override;
  boost::asio::awaitable<void> journal_remove(std::vector<std::int64_t> update_ids) override;
  boost::asio::awaitable<std::vector<JournalEntry>> journal_load() override;

  /// Returns the dead letters of this bot, oldest first.
  boost::asio::awaitable<std::vector<DeadLetter>> dead_letters();

 private:
  redis::Client* client_;
  std::string offset_key_;
  std::string dead_letters_key_;
  std::string journal_key_;
};

}  // namespace sluice::updates
