// Recipient pages and checkpoints in SQLite or PostgreSQL through
// sluice::db. The SQL is valid in both (SQLite 3.24+ for ON CONFLICT).
#include <sluice/broadcast/broadcast.hpp>

#include <algorithm>
#include <limits>
#include <unordered_set>
#include <utility>

#include <sluice/db/database.hpp>

namespace sluice::broadcast {

namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS broadcast_recipients (\n"
    "  broadcast_id TEXT NOT NULL,\n"
    "  chat_id BIGINT NOT NULL,\n"
    "  outcome SMALLINT NOT NULL,\n"
    "  migrated_to BIGINT,\n"
    "  PRIMARY KEY (broadcast_id, chat_id)\n"
    ")";

}  // namespace

SqlRecipientSource::SqlRecipientSource(db::Database& database, std::string page_query, std::string count_query)
    : database_(&database), page_query_(std::move(page_query)), count_query_(std::move(count_query)) {}

boost::asio::awaitable<std::vector<std::int64_t>> SqlRecipientSource::next_page(std::optional<std::int64_t> after,
                                                                                std::size_t limit) {
  const std::int64_t lower = after.value_or(std::numeric_limits<std::int64_t>::min());
  const auto page_size = static_cast<std::int64_t>(limit);
  std::string sql = page_query_;
  db::ResultSet rows = co_await database_->query(std::move(sql), lower, page_size);
  std::vector<std::int64_t> page;
  page.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    page.push_back(rows[i].get<std::int64_t>(0));
  }
  co_return page;
}

boost::asio::awaitable<std::optional<std::uint64_t>> SqlRecipientSource::count() {
  if (count_query_.empty()) {
    co_return std::nullopt;
  }
  std::string sql = count_query_;
  db::ResultSet rows = co_await database_->query(std::move(sql));
  if (rows.empty()) {
    co_return std::nullopt;
  }
  co_return static_cast<std::uint64_t>(std::max<std::int64_t>(0, rows[0].get<std::int64_t>(0)));
}

SqlCheckpointStore::SqlCheckpointStore(db::Database& database) : database_(&database) {}

const char* SqlCheckpointStore::schema_sql() noexcept {
  return kSchema;
}

boost::asio::awaitable<void> SqlCheckpointStore::ensure_schema() {
  std::string sql = kSchema;
  co_await database_->execute(std::move(sql));
}

boost::asio::awaitable<std::vector<std::int64_t>> SqlCheckpointStore::filter_pending(
    std::string broadcast_id, std::vector<std::int64_t> page) {
  if (page.empty()) {
    co_return page;
  }
  // One range query per page over the primary key, instead of one per id.
  std::string sql =
      "SELECT chat_id FROM broadcast_recipients WHERE broadcast_id = $1 AND chat_id >= $2 AND chat_id <= $3";
  const std::int64_t first = page.front();
  const std::int64_t last = page.back();
  db::ResultSet rows = co_await database_->query(std::move(sql), broadcast_id, first, last);
  if (rows.empty()) {
    co_return page;
  }
  std::unordered_set<std::int64_t> done;
  done.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    done.insert(rows[i].get<std::int64_t>(0));
  }
  std::erase_if(page, [&done](std::int64_t chat_id) { return done.contains(chat_id); });
  co_return page;
}

boost::asio::awaitable<void> SqlCheckpointStore::record(std::string broadcast_id, RecipientResult result) {
  std::string sql =
      "INSERT INTO broadcast_recipients (broadcast_id, chat_id, outcome, migrated_to) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (broadcast_id, chat_id) DO UPDATE SET outcome = excluded.outcome, "
      "migrated_to = excluded.migrated_to";
  const auto outcome = static_cast<std::int64_t>(result.outcome);
  co_await database_->execute(std::move(sql), broadcast_id, result.chat_id, outcome, result.migrated_to);
}

boost::asio::awaitable<Progress> SqlCheckpointStore::totals(std::string broadcast_id) {
  std::string sql =
      "SELECT outcome, COUNT(*), COUNT(migrated_to) FROM broadcast_recipients WHERE broadcast_id = $1 "
      "GROUP BY outcome";
  db::ResultSet rows = co_await database_->query(std::move(sql), broadcast_id);
  Progress totals;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto outcome = static_cast<Outcome>(rows[i].get<std::int64_t>(0));
    const auto count = static_cast<std::uint64_t>(rows[i].get<std::int64_t>(1));
    switch (outcome) {
      case Outcome::delivered:
        totals.delivered += count;
        totals.migrated += static_cast<std::uint64_t>(rows[i].get<std::int64_t>(2));
        break;
      case Outcome::blocked:
        totals.blocked += count;
        break;
      case Outcome::failed:
        totals.failed += count;
        break;
    }
  }
  co_return totals;
}

}  // namespace sluice::broadcast
