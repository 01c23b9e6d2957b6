#pragma once
// Broadcast: sends one message to every recipient of a paged source, with
// bounded concurrency, on the Bot API's bulk lane, and records per recipient
// that it is done so that an interrupted broadcast resumes where it stopped.
//
//   SqlCheckpointStore checkpoints(db);
//   SqlRecipientSource subscribers(db, "SELECT id FROM users WHERE subscribed AND id > $1 "
//                                      "ORDER BY id LIMIT $2");
//   Broadcast news(make_text_sender(api, {.text = "Hello"}), subscribers, checkpoints,
//                  {.id = "news-1"});
//   background.spawn("broadcast:news-1", news.run());
//
// Guarantees, per recipient and broadcast id:
// - Each recipient is sent to at most once, except a send that was in
//   flight when the process stopped: the checkpoint is written after the
//   Bot API replied, so that one send may be repeated after a resume.
// - No recipient is skipped: a resumed run reads the whole source again and
//   leaves out only the recipients the store records as done.
// - 403 (the user blocked the bot, the account is deleted, the bot left the
//   group) counts as `blocked` and calls `on_blocked`.
// - A "group chat was upgraded" reply (migrate_to_chat_id) is followed once:
//   the message goes to the new id, and `on_migrated` is called.
// - Every other error, after the BotApi's own retries, counts as `failed`.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace sluice::telegram {
class BotApi;
}

namespace sluice::db {
class Database;
}

namespace sluice::broadcast {

/// The outcome for one recipient.
enum class Outcome : std::uint8_t {
  /// The message was sent (to the migrated id, when the chat had moved).
  delivered = 1,
  /// Telegram replied 403: blocked, deactivated or removed from the chat.
  blocked = 2,
  /// Any other error once the BotApi gave up retrying.
  failed = 3,
};

/// Returns "delivered", "blocked" or "failed".
const char* to_string(Outcome outcome) noexcept;

/// The recorded result for one recipient.
struct RecipientResult {
  std::int64_t chat_id = 0;
  Outcome outcome = Outcome::failed;
  /// Set when the chat had migrated and the message went to this id.
  std::optional<std::int64_t> migrated_to{};
};

/// Counts of one broadcast. The outcome counts include recipients recorded
/// by earlier runs of the same broadcast id.
struct Progress {
  std::uint64_t delivered = 0;
  std::uint64_t blocked = 0;
  std::uint64_t failed = 0;
  /// Delivered recipients whose chat had migrated to a new id.
  std::uint64_t migrated = 0;
  /// Recipients already recorded as done when this run started.
  std::uint64_t resumed = 0;
  /// Recipients not yet done: the source's count minus the outcomes, or
  /// nullopt when the source cannot count.
  std::optional<std::uint64_t> pending{};
  /// Sends finished in this run per second of this run.
  double rate = 0.0;
  std::chrono::milliseconds elapsed{0};

  std::uint64_t done() const noexcept { return delivered + blocked + failed; }
};

/// The final report of a run that went through the whole source. The
/// outcome counts are read back from the checkpoint store at the end.
struct Report {
  Progress totals{};
  std::chrono::milliseconds duration{0};
  /// Sends finished in this run per second of this run.
  double rate = 0.0;
};

/// A paged list of recipients, read with keyset pagination: each page contains
/// the chat ids above the previous page's last one, ascending, so that a
/// recipient added or removed meanwhile does not shift the pages.
class RecipientSource {
 public:
  virtual ~RecipientSource() = default;

  /// Returns up to `limit` chat ids greater than `after` (from the start
  /// when nullopt), ascending. An empty page ends the source.
  virtual boost::asio::awaitable<std::vector<std::int64_t>> next_page(std::optional<std::int64_t> after,
                                                                      std::size_t limit) = 0;

  /// Returns the number of recipients for progress reports, or nullopt.
  virtual boost::asio::awaitable<std::optional<std::uint64_t>> count();
};

/// Recipients held in memory (tests, small lists). Sorts and deduplicates.
class VectorRecipientSource final : public RecipientSource {
 public:
  explicit VectorRecipientSource(std::vector<std::int64_t> chat_ids);
  boost::asio::awaitable<std::vector<std::int64_t>> next_page(std::optional<std::int64_t> after,
                                                              std::size_t limit) override;
  boost::asio::awaitable<std::optional<std::uint64_t>> count() override;

 private:
  std::vector<std::int64_t> chat_ids_;
};

/// Recipients read from a database, one page per query.
///
/// `page_query` takes `$1` (the last chat id of the previous page, or the
/// smallest int64 for the first page) and `$2` (the page size), and selects
/// the chat ids as the first column in ascending order, for example
/// `SELECT id FROM users WHERE subscribed AND id > $1 ORDER BY id LIMIT $2`.
/// `count_query`, when not empty, selects one integer.
/// The Database must outlive the source.
class SqlRecipientSource final : public RecipientSource {
 public:
  SqlRecipientSource(db::Database& database, std::string page_query, std::string count_query = {});
  boost::asio::awaitable<std::vector<std::int64_t>> next_page(std::optional<std::int64_t> after,
                                                              std::size_t limit) override;
  boost::asio::awaitable<std::optional<std::uint64_t>> count() override;

 private:
  db::Database* database_;
  std::string page_query_;
  std::string count_query_;
};

/// Records which recipients of a broadcast are done. Implementations must
/// make a `record` durable before it returns, because a resumed run trusts
/// it to skip the recipient.
class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;

  /// Returns the chat ids of `page` (ascending) that are not recorded as
  /// done for `broadcast_id`, in the same order.
  virtual boost::asio::awaitable<std::vector<std::int64_t>> filter_pending(std::string broadcast_id,
                                                                           std::vector<std::int64_t> page) = 0;

  /// Records the result of one recipient.
  virtual boost::asio::awaitable<void> record(std::string broadcast_id, RecipientResult result) = 0;

  /// Returns the counts recorded so far for `broadcast_id` (delivered,
  /// blocked, failed and migrated; the other fields stay zero).
  virtual boost::asio::awaitable<Progress> totals(std::string broadcast_id) = 0;
};

/// Checkpoints in memory: resumes within one process only (tests).
class MemoryCheckpointStore final : public CheckpointStore {
 public:
  MemoryCheckpointStore();
  ~MemoryCheckpointStore() override;
  boost::asio::awaitable<std::vector<std::int64_t>> filter_pending(std::string broadcast_id,
                                                                   std::vector<std::int64_t> page) override;
  boost::asio::awaitable<void> record(std::string broadcast_id, RecipientResult result) override;
  boost::asio::awaitable<Progress> totals(std::string broadcast_id) override;

  /// Every result recorded for `broadcast_id`, in recording order.
  std::vector<RecipientResult> results(const std::string& broadcast_id) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Checkpoints in the table `broadcast_recipients` of a SQLite or
/// PostgreSQL database (one row per recipient, written in its own
/// statement, so a crash loses at most the sends in flight). The
/// Database must outlive the store.
class SqlCheckpointStore final : public CheckpointStore {
 public:
  explicit SqlCheckpointStore(db::Database& database);

  /// The table, for a migration file; `ensure_schema` runs the same text.
  static const char* schema_sql() noexcept;
  /// Creates the table when it does not exist.
  boost::asio::awaitable<void> ensure_schema();

  boost::asio::awaitable<std::vector<std::int64_t>> filter_pending(std::string broadcast_id,
                                                                   std::vector<std::int64_t> page) override;
  boost::asio::awaitable<void> record(std::string broadcast_id, RecipientResult result) override;
  boost::asio::awaitable<Progress> totals(std::string broadcast_id) override;

 private:
  db::Database* database_;
};

/// Sends the message to one chat; throws the BotApi's errors
/// (telegram::TelegramError, NetworkError, ApiParseError).
using SendFunction = std::function<boost::asio::awaitable<void>(std::int64_t chat_id)>;

/// The message of a text broadcast.
struct TextMessage {
  std::string text{};
  /// "HTML", "MarkdownV2" or empty for plain text.
  std::string parse_mode{};
  /// Send with allow_paid_broadcast, which lifts the 30 messages/s limit to
  /// 1000 messages/s against a fee in Telegram Stars.
  bool allow_paid_broadcast = false;
};

/// Returns a SendFunction that calls sendMessage on `api.bulk()`, so that
/// interactive replies keep priority. The BotApi must outlive it.
SendFunction make_text_sender(telegram::BotApi& api, TextMessage message);

struct BroadcastOptions {
  /// Broadcast id: the checkpoint key and part of log lines. Required; a
  /// run with the same id resumes the earlier one.
  std::string id{};
  /// Sends in flight at once. The BotApi's flood control sets the actual
  /// rate; this only bounds memory and connections. Default 64.
  std::size_t concurrency = 64;
  /// Chat ids read from the source per page. Default 500.
  std::size_t page_size = 500;
  /// Time between two progress callbacks. Default 5 s.
  std::chrono::milliseconds progress_interval = std::chrono::seconds(5);
  /// Send to migrate_to_chat_id when a group was upgraded. Default true.
  bool follow_migrations = true;
};

/// Callbacks of one broadcast. Each runs on the broadcast's executor and is
/// awaited: a slow callback slows the sends that wait for it. An exception
/// from a callback stops the broadcast like an error of the store.
struct BroadcastCallbacks {
  /// A send to a recipient got 403; the bot marks it inactive.
  std::function<boost::asio::awaitable<void>(std::int64_t chat_id)> on_blocked{};
  /// A chat moved to a new id; the bot updates its record.
  std::function<boost::asio::awaitable<void>(std::int64_t old_chat_id, std::int64_t new_chat_id)> on_migrated{};
  /// Every `progress_interval`, and not after the run ended.
  std::function<boost::asio::awaitable<void>(Progress progress)> on_progress{};
};

/// One broadcast run.
///
/// Executor: runs on the executor of the coroutine that awaits run(), which
/// must be the BotApi's and the Database's (a single-threaded io_context).
///
/// Lifetime: the sender, source, store and the objects they use must
/// outlive run(). Run it as a named TaskSet task or await it directly.
///
/// Cancellation: cancelling the awaiting coroutine cancels every send in
/// flight and throws operation_aborted once they have unwound. A cancelled
/// send records nothing, so a later run with the same id sends to it again
/// (the request may have reached Telegram already).
///
/// Errors: an error of the source or the store stops the run; sends in
/// flight are cancelled and the error is rethrown. Recipients already
/// recorded stay recorded. Send errors never stop the run.
///
/// Ordering: recipients start in ascending chat id order; up to
/// `concurrency` run at once and finish in any order.
class Broadcast {
 public:
  /// Throws std::invalid_argument for an empty id, a zero concurrency or
  /// page size, or a missing sender.
  Broadcast(SendFunction send, RecipientSource& source, CheckpointStore& store, BroadcastOptions options,
            BroadcastCallbacks callbacks = {});
  ~Broadcast();
  Broadcast(const Broadcast&) = delete;
  Broadcast& operator=(const Broadcast&) = delete;

  /// Sends to every pending recipient and returns the report. Call once.
  boost::asio::awaitable<Report> run();

  /// The counts so far (valid during and after run()).
  Progress progress() const;

  const BroadcastOptions& options() const noexcept { return options_; }

 private:
  struct State;
  boost::asio::awaitable<void> send_to(std::int64_t chat_id);
  boost::asio::awaitable<void> send_all();
  boost::asio::awaitable<void> report_progress_loop();
  boost::asio::awaitable<std::optional<std::int64_t>> next_recipient();

  SendFunction send_;
  RecipientSource* source_;
  CheckpointStore* store_;
  BroadcastOptions options_;
  BroadcastCallbacks callbacks_;
  std::unique_ptr<State> state_;
};

}  // namespace sluice::broadcast
