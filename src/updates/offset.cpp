#include <sluice/updates/offset.hpp>

#include <stdexcept>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <sluice/db/database.hpp>

namespace sluice::updates {

OffsetTracker::OffsetTracker(std::optional<std::int64_t> start_offset)
    : start_offset_(start_offset) {}

bool OffsetTracker::receive(std::int64_t update_id) {
  if (start_offset_ && update_id < *start_offset_) {
    return false;
  }
  if (highest_received_ && update_id <= *highest_received_) {
    return false;
  }
  highest_received_ = update_id;
  pending_.insert(update_id);
  return true;
}

void OffsetTracker::handled(std::int64_t update_id) { pending_.erase(update_id); }

std::optional<std::int64_t> OffsetTracker::confirmed_offset() const noexcept {
  if (!pending_.empty()) {
    return *pending_.begin();
  }
  if (highest_received_) {
    return *highest_received_ + 1;
  }
  return start_offset_;
}

namespace {

[[noreturn]] void throw_no_journal() {
  throw std::logic_error("this OffsetStore keeps no journal; LongPollingOptions::journal needs "
                         "one (SqlOffsetStore or RedisOffsetStore)");
}

// The entries as a JSON array of [update_id, update] pairs: one bound
// parameter that SQLite's json_each and PostgreSQL's json_array_elements
// expand into rows, so a batch is a single INSERT on both. Each update is
// pasted in as the JSON text it is, rather than escaped into a string.
std::string entries_to_json(const std::vector<JournalEntry>& entries) {
  std::size_t size = 2;
  for (const JournalEntry& entry : entries) {
    size += entry.raw_json.size() + 24;
  }
  std::string pairs;
  pairs.reserve(size);
  pairs += '[';
  for (const JournalEntry& entry : entries) {
    if (pairs.size() > 1) {
      pairs += ',';
    }
    pairs += '[';
    pairs += std::to_string(entry.update_id);
    pairs += ',';
    pairs += entry.raw_json;
    pairs += ']';
  }
  pairs += ']';
  return pairs;
}

std::string ids_to_json(const std::vector<std::int64_t>& update_ids) {
  boost::json::array ids;
  ids.reserve(update_ids.size());
  for (std::int64_t id : update_ids) {
    ids.emplace_back(id);
  }
  return boost::json::serialize(ids);
}

}  // namespace

boost::asio::awaitable<void> OffsetStore::journal_append(std::vector<JournalEntry> /*entries*/,
                                                         std::int64_t /*next_offset*/) {
  throw_no_journal();
  co_return;
}

boost::asio::awaitable<void> OffsetStore::journal_remove(std::vector<std::int64_t> /*update_ids*/) {
  throw_no_journal();
  co_return;
}

boost::asio::awaitable<std::vector<JournalEntry>> OffsetStore::journal_load() {
  throw_no_journal();
  co_return std::vector<JournalEntry>{};
}

boost::asio::awaitable<std::optional<std::int64_t>> MemoryOffsetStore::load() { co_return offset_; }

boost::asio::awaitable<void> MemoryOffsetStore::save(std::int64_t offset) {
  offset_ = offset;
  co_return;
}

boost::asio::awaitable<void> MemoryOffsetStore::add_dead_letter(DeadLetter letter) {
  dead_letters_.push_back(std::move(letter));
  co_return;
}

boost::asio::awaitable<void> MemoryOffsetStore::journal_append(std::vector<JournalEntry> entries,
                                                               std::int64_t next_offset) {
  for (JournalEntry& entry : entries) {
    journal_.insert_or_assign(entry.update_id, std::move(entry.raw_json));
  }
  offset_ = next_offset;
  co_return;
}

boost::asio::awaitable<void> MemoryOffsetStore::journal_remove(std::vector<std::int64_t> update_ids) {
  for (std::int64_t id : update_ids) {
    journal_.erase(id);
  }
  co_return;
}

boost::asio::awaitable<std::vector<JournalEntry>> MemoryOffsetStore::journal_load() {
  std::vector<JournalEntry> entries;
  entries.reserve(journal_.size());
  for (const auto& [id, raw_json] : journal_) {
    entries.push_back(JournalEntry{.update_id = id, .raw_json = raw_json});
  }
  co_return entries;
}

SqlOffsetStore::SqlOffsetStore(db::Database& database, std::string bot_id)
    : database_(&database), bot_id_(std::move(bot_id)) {}

boost::asio::awaitable<void> SqlOffsetStore::create_tables() {
  // BIGINT and TEXT work on both SQLite and PostgreSQL; the dead letters'
  // id is assigned by the store (max + 1) to avoid dialect-specific
  // auto-increment syntax.
  co_await database_->execute(
      "CREATE TABLE IF NOT EXISTS sluice_update_offset ("
      "bot_id TEXT PRIMARY KEY, next_offset BIGINT NOT NULL)");
  co_await database_->execute(
      "CREATE TABLE IF NOT EXISTS sluice_dead_letters ("
      "bot_id TEXT NOT NULL, seq BIGINT NOT NULL, update_id BIGINT, raw_json TEXT NOT NULL, "
      "error TEXT NOT NULL, PRIMARY KEY (bot_id, seq))");
  co_await database_->execute(
      "CREATE TABLE IF NOT EXISTS sluice_update_journal ("
      "bot_id TEXT NOT NULL, update_id BIGINT NOT NULL, raw_json TEXT NOT NULL, "
      "PRIMARY KEY (bot_id, update_id))");
}

boost::asio::awaitable<std::optional<std::int64_t>> SqlOffsetStore::load() {
  auto rows = co_await database_->query(
      "SELECT next_offset FROM sluice_update_offset WHERE bot_id = $1", bot_id_);
  for (auto row : rows) {
    co_return row.get<std::int64_t>(0);
  }
  co_return std::nullopt;
}

boost::asio::awaitable<void> SqlOffsetStore::save(std::int64_t offset) {
  co_await database_->execute(
      "INSERT INTO sluice_update_offset (bot_id, next_offset) VALUES ($1, $2) "
      "ON CONFLICT (bot_id) DO UPDATE SET next_offset = excluded.next_offset",
      bot_id_, offset);
}

boost::asio::awaitable<void> SqlOffsetStore::add_dead_letter(DeadLetter letter) {
  co_await database_->execute(
      "INSERT INTO sluice_dead_letters (bot_id, seq, update_id, raw_json, error) "
      "SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM sluice_dead_letters WHERE bot_id = $1",
      bot_id_, letter.update_id, letter.raw_json, letter.error);
}

boost::asio::awaitable<void> SqlOffsetStore::journal_append(std::vector<JournalEntry> entries,
                                                            std::int64_t next_offset) {
  const bool sqlite = database_->backend() == db::Backend::sqlite;
  const std::string pairs = entries_to_json(entries);
  auto conn = co_await database_->acquire(db::Access::read_write);
  db::Transaction transaction = co_await conn->begin();
  if (!entries.empty()) {
    co_await conn->execute(
        sqlite ? "INSERT OR IGNORE INTO sluice_update_journal (bot_id, update_id, raw_json) "
                 "SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($2)"
               : "INSERT INTO sluice_update_journal (bot_id, update_id, raw_json) "
                 "SELECT $1, (pair->>0)::bigint, pair->>1 FROM json_array_elements($2::json) AS pair "
                 "ON CONFLICT DO NOTHING",
        bot_id_, pairs);
  }
  co_await conn->execute(
      "INSERT INTO sluice_update_offset (bot_id, next_offset) VALUES ($1, $2) "
      "ON CONFLICT (bot_id) DO UPDATE SET next_offset = excluded.next_offset",
      bot_id_, next_offset);
  co_await transaction.commit();
}

boost::asio::awaitable<void> SqlOffsetStore::journal_remove(std::vector<std::int64_t> update_ids) {
  if (update_ids.empty()) {
    co_return;
  }
  const bool sqlite = database_->backend() == db::Backend::sqlite;
  co_await database_->execute(
      sqlite ? "DELETE FROM sluice_update_journal WHERE bot_id = $1 "
               "AND update_id IN (SELECT value FROM json_each($2))"
             : "DELETE FROM sluice_update_journal WHERE bot_id = $1 "
               "AND update_id IN (SELECT id::bigint FROM json_array_elements_text($2::json) AS id)",
      bot_id_, ids_to_json(update_ids));
}

boost::asio::awaitable<std::vector<JournalEntry>> SqlOffsetStore::journal_load() {
  auto rows = co_await database_->query(
      "SELECT update_id, raw_json FROM sluice_update_journal WHERE bot_id = $1 ORDER BY update_id",
      bot_id_);
  std::vector<JournalEntry> entries;
  for (auto row : rows) {
    entries.push_back(JournalEntry{
        .update_id = row.get<std::int64_t>(0),
        .raw_json = row.get<std::string>(1),
    });
  }
  co_return entries;
}

boost::asio::awaitable<std::vector<DeadLetter>> SqlOffsetStore::dead_letters() {
  auto rows = co_await database_->query(
      "SELECT update_id, raw_json, error FROM sluice_dead_letters WHERE bot_id = $1 ORDER BY seq",
      bot_id_);
  std::vector<DeadLetter> letters;
  for (auto row : rows) {
    letters.push_back(DeadLetter{
        .update_id = row.get<std::optional<std::int64_t>>(0),
        .raw_json = row.get<std::string>(1),
        .error = row.get<std::string>(2),
    });
  }
  co_return letters;
}

}  // namespace sluice::updates
