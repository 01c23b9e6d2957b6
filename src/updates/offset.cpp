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

// Journal rows per INSERT. A batch goes in chunks of 64, 32, ... 1 rows, so
// at most seven statement texts enter the prepared statement cache.
constexpr std::size_t kMaxRowsPerInsert = 64;

// An INSERT of `rows` journal entries with $1 as the bot id and two
// parameters per entry. Binding each update costs SQLite about a quarter
// of expanding one JSON array of them with json_each, which parses every
// update again for each column it extracts.
std::string insert_journal_sql(std::size_t rows, bool sqlite) {
  std::string sql = sqlite ? "INSERT OR IGNORE INTO sluice_update_journal (bot_id, update_id, raw_json) VALUES "
                           : "INSERT INTO sluice_update_journal (bot_id, update_id, raw_json) VALUES ";
  for (std::size_t row = 0; row < rows; ++row) {
    if (row > 0) {
      sql += ", ";
    }
    sql += "($1, $";
    sql += std::to_string(2 + 2 * row);
    sql += ", $";
    sql += std::to_string(3 + 2 * row);
    sql += ')';
  }
  if (!sqlite) {
    sql += " ON CONFLICT DO NOTHING";
  }
  return sql;
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
  std::vector<db::Statement> statements;
  std::size_t next = 0;
  while (next < entries.size()) {
    std::size_t rows = kMaxRowsPerInsert;
    while (rows > entries.size() - next) {
      rows /= 2;
    }
    db::Statement& insert = statements.emplace_back(insert_journal_sql(rows, sqlite), bot_id_);
    insert.params.reserve(1 + 2 * rows);
    for (std::size_t row = 0; row < rows; ++row, ++next) {
      insert.params.push_back(db::to_param(entries[next].update_id));
      insert.params.push_back(db::Param{.kind = db::Param::Kind::text, .bytes = std::move(entries[next].raw_json)});
    }
  }
  statements.emplace_back(
      "INSERT INTO sluice_update_offset (bot_id, next_offset) VALUES ($1, $2) "
      "ON CONFLICT (bot_id) DO UPDATE SET next_offset = excluded.next_offset",
      bot_id_, next_offset);
  auto conn = co_await database_->acquire(db::Access::read_write);
  co_await conn->execute_in_transaction(std::move(statements));
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
