#include <sluice/db/database.hpp>

#include <cctype>

#include <fmt/format.h>

namespace sluice::db {
namespace asio = boost::asio;

namespace {

// The SQLite writer pool waits this much longer than busy_timeout, so the
// pool never gives up while SQLite is still waiting for a lock.
constexpr auto kWriterWaitMargin = std::chrono::seconds{1};

}  // namespace

struct Database::Impl {
  Backend backend = Backend::postgresql;
  std::string redacted_url;
  std::unique_ptr<Pool<PgDriver>> postgres;
  std::unique_ptr<Pool<SqliteDriver>> writer;
  std::unique_ptr<Pool<SqliteDriver>> readers;
};

Database::Database(asio::any_io_executor executor, std::string_view url, DatabaseOptions options)
    : impl_(std::make_unique<Impl>()) {
  auto parsed = DatabaseUrl::parse(url);
  impl_->backend = parsed.backend;
  impl_->redacted_url = parsed.redacted();

  if (parsed.backend == Backend::postgresql) {
    PgDriver driver(executor, std::move(parsed), std::move(options.postgres));
    impl_->postgres = std::make_unique<Pool<PgDriver>>(executor, std::move(driver), std::move(options.pool));
    return;
  }

  SqliteDriver writer_driver(parsed, options.sqlite, true);
  const auto& sqlite = writer_driver.options();
  PoolOptions writer_options = options.pool;
  writer_options.name = options.pool.name + ".writer";
  if (options.pool.pool_size > 0) {
    writer_options.pool_size = 1;
    writer_options.max_overflow = 0;
  }
  writer_options.pool_pre_ping = false;
  writer_options.pool_timeout = std::max(writer_options.pool_timeout,
                                         std::chrono::duration_cast<std::chrono::milliseconds>(
                                             sqlite.busy_timeout + kWriterWaitMargin));
  const bool shared_memory = parsed.database == ":memory:";
  const std::size_t readers = sqlite.readers;
  impl_->writer = std::make_unique<Pool<SqliteDriver>>(executor, std::move(writer_driver), writer_options);
  if (shared_memory || readers == 0) {
    // Each connection to ":memory:" is its own database: use the writer.
    return;
  }

  PoolOptions reader_options = options.pool;
  reader_options.name = options.pool.name + ".readers";
  if (options.pool.pool_size > 0) {
    reader_options.pool_size = readers;
    reader_options.max_overflow = 0;
  }
  reader_options.pool_pre_ping = false;
  SqliteDriver reader_driver(std::move(parsed), options.sqlite, false);
  impl_->readers = std::make_unique<Pool<SqliteDriver>>(executor, std::move(reader_driver), reader_options);
}

Database::~Database() = default;
Database::Database(Database&&) noexcept = default;

Backend Database::backend() const noexcept { return impl_->backend; }
const std::string& Database::url() const noexcept { return impl_->redacted_url; }

asio::awaitable<ConnectionHandle> Database::acquire(Access access, std::optional<Clock::time_point> deadline,
                                                    std::source_location site) {
  // Each handle is bound to a named local before conversion: g++ 12 may
  // destroy a temporary inside a co_await expression twice.
  if (impl_->postgres) {
    auto pooled = co_await impl_->postgres->acquire(deadline, site);
    co_return ConnectionHandle(std::move(pooled));
  }
  Pool<SqliteDriver>& pool = access == Access::read_only && impl_->readers ? *impl_->readers : *impl_->writer;
  auto pooled = co_await pool.acquire(deadline, site);
  co_return ConnectionHandle(std::move(pooled));
}

asio::awaitable<void> Database::close() {
  if (impl_->postgres) {
    co_await impl_->postgres->close();
  }
  if (impl_->readers) {
    co_await impl_->readers->close();
  }
  if (impl_->writer) {
    co_await impl_->writer->close();
  }
}

PoolStats Database::stats(Access access) const {
  if (impl_->postgres) {
    return impl_->postgres->stats();
  }
  if (access == Access::read_only && impl_->readers) {
    return impl_->readers->stats();
  }
  return impl_->writer->stats();
}

Pool<PgDriver>* Database::postgres_pool() noexcept { return impl_->postgres.get(); }

Pool<SqliteDriver>* Database::sqlite_pool(Access access) noexcept {
  if (access == Access::read_only && impl_->readers) {
    return impl_->readers.get();
  }
  return impl_->writer.get();
}

bool Database::starts_with_select(std::string_view sql) noexcept {
  std::size_t i = 0;
  while (i < sql.size() && (std::isspace(static_cast<unsigned char>(sql[i])) != 0 || sql[i] == '(')) {
    ++i;
  }
  constexpr std::string_view kSelect = "select";
  if (sql.size() - i < kSelect.size()) {
    return false;
  }
  for (std::size_t k = 0; k < kSelect.size(); ++k) {
    if (std::tolower(static_cast<unsigned char>(sql[i + k])) != kSelect[k]) {
      return false;
    }
  }
  return sql.size() - i == kSelect.size() || std::isalnum(static_cast<unsigned char>(sql[i + kSelect.size()])) == 0;
}

}  // namespace sluice::db
