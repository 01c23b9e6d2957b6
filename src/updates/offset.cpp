#include <sluice/updates/offset.hpp>

#include <utility>

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

boost::asio::awaitable<std::optional<std::int64_t>> MemoryOffsetStore::load() { co_return offset_; }

boost::asio::awaitable<void> MemoryOffsetStore::save(std::int64_t offset) {
  offset_ = offset;
  co_return;
}

boost::asio::awaitable<void> MemoryOffsetStore::add_dead_letter(DeadLetter letter) {
  dead_letters_.push_back(std::move(letter));
  co_return;
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
