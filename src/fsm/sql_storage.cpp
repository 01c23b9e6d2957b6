// SqlStorage: conversation states in the table sluice_fsm_state of a SQLite
// or PostgreSQL database.

#include <sluice/fsm/storage.hpp>

#include <stdexcept>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sluice/db/database.hpp>

#include "fsm/key_lock_table.hpp"

namespace sluice::fsm {

namespace {

// The SQL here is the subset that SQLite 3.40 and PostgreSQL 15 share:
// BIGINT and TEXT columns, $n placeholders and ON CONFLICT upserts.
// Expiry times are milliseconds since the Unix epoch, NULL for none.
constexpr std::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS sluice_fsm_state ("
    "key TEXT PRIMARY KEY, bot_id BIGINT NOT NULL, chat_id BIGINT NOT NULL, "
    "state TEXT NOT NULL, data TEXT NOT NULL, expires_at BIGINT)";
// move_chat looks records up by chat.
constexpr std::string_view kCreateIndex =
    "CREATE INDEX IF NOT EXISTS sluice_fsm_state_chat ON sluice_fsm_state (bot_id, chat_id)";
// The key of the PostgreSQL advisory lock taken by create_tables: an
// arbitrary constant that other users of the database are unlikely to pick.
constexpr std::int64_t kCreateTablesLockId = 0x736c75696365'01;

boost::json::object parse_data(const std::string& text, const std::string& key) {
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(text, error);
  if (error || !value.is_object()) {
    throw std::runtime_error("sluice_fsm_state row " + key + " has invalid data (not a JSON object): " +
                             (error ? error.message() : std::string("a JSON ") + std::string(boost::json::to_string(value.kind()))));
  }
  return std::move(value.as_object());
}

}  // namespace

SqlStorage::SqlStorage(db::Database& database, SqlStorageOptions options)
    : database_(&database), options_(std::move(options)), locks_(std::make_unique<detail::KeyLockTable>()) {}

SqlStorage::~SqlStorage() = default;

std::int64_t SqlStorage::now_ms() const {
  const auto now = options_.clock ? options_.clock() : std::chrono::system_clock::now();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
}

std::size_t SqlStorage::lock_entries() const noexcept { return locks_->size(); }

boost::asio::awaitable<void> SqlStorage::create_tables() {
  auto conn = co_await database_->acquire(db::Access::read_write);
  db::Transaction transaction = co_await conn->begin();
  if (database_->backend() == db::Backend::postgresql) {
    // Two PostgreSQL sessions that run CREATE TABLE IF NOT EXISTS at once
    // can both miss the table, and one then fails on a unique index of the
    // catalog. The lock makes the second wait for the first.
    co_await conn->query("SELECT pg_advisory_xact_lock($1)", kCreateTablesLockId);
  }
  co_await conn->execute(kCreateTable);
  co_await conn->execute(kCreateIndex);
  co_await transaction.commit();
}

boost::asio::awaitable<std::optional<StateRecord>> SqlStorage::get(StorageKey key) {
  const std::string text = key.to_string();
  auto rows = co_await database_->query("SELECT state, data, expires_at FROM sluice_fsm_state WHERE key = $1",
                                        text);
  if (rows.empty()) {
    co_return std::nullopt;
  }
  const auto row = *rows.begin();
  const auto expires_at = row.get<std::optional<std::int64_t>>(2);
  const std::int64_t now = now_ms();
  if (expires_at && *expires_at <= now) {
    // The condition keeps a row that another process renewed meanwhile.
    co_await database_->execute("DELETE FROM sluice_fsm_state WHERE key = $1 AND expires_at <= $2", text, now);
    co_return std::nullopt;
  }
  StateRecord record{.state = row.get<std::string>(0), .data = parse_data(row.get<std::string>(1), text)};
  co_return record;
}

boost::asio::awaitable<void> SqlStorage::set(StorageKey key, StateRecord record,
                                             std::optional<std::chrono::milliseconds> ttl) {
  std::optional<std::int64_t> expires_at;
  if (ttl) {
    expires_at = now_ms() + ttl->count();
  }
  co_await database_->execute(
      "INSERT INTO sluice_fsm_state (key, bot_id, chat_id, state, data, expires_at) "
      "VALUES ($1, $2, $3, $4, $5, $6) "
      "ON CONFLICT (key) DO UPDATE SET state = excluded.state, data = excluded.data, "
      "expires_at = excluded.expires_at",
      key.to_string(), key.bot_id, key.chat_id, std::move(record.state), boost::json::serialize(record.data),
      expires_at);
}

boost::asio::awaitable<void> SqlStorage::clear(StorageKey key) {
  co_await database_->execute("DELETE FROM sluice_fsm_state WHERE key = $1", key.to_string());
}

boost::asio::awaitable<KeyLock> SqlStorage::lock(StorageKey key) {
  detail::KeyLockTable::Lock held = co_await locks_->acquire(key.to_string());
  co_return KeyLock(std::make_unique<detail::LocalLockHolder>(std::move(held)));
}

boost::asio::awaitable<std::size_t> SqlStorage::move_chat(std::int64_t bot_id, std::int64_t old_chat_id,
                                                          std::int64_t new_chat_id) {
  const std::int64_t now = now_ms();
  auto conn = co_await database_->acquire(db::Access::read_write);
  db::Transaction transaction = co_await conn->begin();
  auto rows = co_await conn->query("SELECT key FROM sluice_fsm_state WHERE bot_id = $1 AND chat_id = $2",
                                   bot_id, old_chat_id);
  std::vector<std::string> old_keys;
  for (auto row : rows) {
    old_keys.push_back(row.get<std::string>(0));
  }

  std::size_t moved = 0;
  for (const std::string& old_text : old_keys) {
    std::optional<StorageKey> key = StorageKey::parse(old_text);
    if (!key) {
      throw std::runtime_error("sluice_fsm_state has a row with an invalid key `" + old_text +
                               "`; expected <bot_id>:<chat_id>:<user_id>[:<thread_id>]");
    }
    key->chat_id = new_chat_id;
    // The chat strategy stores the chat id as user id.
    if (key->user_id == old_chat_id) {
      key->user_id = new_chat_id;
    }
    // An existing row under the new key wins (ON CONFLICT DO NOTHING); the
    // WHERE clause also lets SQLite parse the upsert of an INSERT ... SELECT.
    moved += co_await conn->execute(
        "INSERT INTO sluice_fsm_state (key, bot_id, chat_id, state, data, expires_at) "
        "SELECT $1, bot_id, $2, state, data, expires_at FROM sluice_fsm_state "
        "WHERE key = $3 AND (expires_at IS NULL OR expires_at > $4) "
        "ON CONFLICT (key) DO NOTHING",
        key->to_string(), new_chat_id, old_text, now);
    co_await conn->execute("DELETE FROM sluice_fsm_state WHERE key = $1", old_text);
  }
  co_await transaction.commit();
  co_return moved;
}

boost::asio::awaitable<std::uint64_t> SqlStorage::delete_expired() {
  co_return co_await database_->execute(
      "DELETE FROM sluice_fsm_state WHERE expires_at IS NOT NULL AND expires_at <= $1", now_ms());
}

boost::asio::awaitable<void> SqlStorage::close() { co_return; }

}  // namespace sluice::fsm
