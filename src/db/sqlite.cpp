#include <sluice/db/sqlite.hpp>

#include <charconv>
#include <condition_variable>
#include <limits>
#include <mutex>

#include <fmt/format.h>
#include <sqlite3.h>

#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/offload.hpp>

namespace sluice::db {
namespace asio = boost::asio;

namespace {

std::int64_t parse_number(std::string_view text, std::string_view key) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value < 0) {
    throw UrlError(fmt::format("invalid database URL parameter {}=`{}`: expected a non-negative integer", key, text));
  }
  return value;
}

// Resets a statement for its next use whatever happens during a step.
struct StatementReset {
  sqlite3_stmt* statement;
  ~StatementReset() {
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
  }
};

// Returns the argument number a placeholder refers to: `$3` -> 3, `?` at
// position 2 -> 2, `?5` -> 5; 0 for a form sluice does not accept.
std::size_t placeholder_number(const char* name, int position) {
  if (name == nullptr) {
    return static_cast<std::size_t>(position);
  }
  const std::string_view text(name);
  if (text.size() < 2 || (text[0] != '$' && text[0] != '?')) {
    return 0;
  }
  std::size_t number = 0;
  const auto [end, error] = std::from_chars(text.data() + 1, text.data() + text.size(), number);
  if (error != std::errc{} || end != text.data() + text.size()) {
    return 0;
  }
  return number;
}

// Maximum busy_timeout, because sqlite3_busy_timeout() takes an int.
constexpr std::chrono::milliseconds kMaxBusyTimeout{std::numeric_limits<int>::max()};

// WAL pages that start a checkpoint: SQLite's own default.
constexpr int kCheckpointPages = 1000;
// WAL pages at which the writer checkpoints in its own commit.
constexpr int kWriterCheckpointPages = 4 * kCheckpointPages;

}  // namespace

// --- WalCheckpointer -----------------------------------------------------------------

// Copies the WAL of one database file into the file, on a connection of its
// own, as jobs on the blocking pool, one at a time. The writer's commits
// report how full the WAL is. A PASSIVE checkpoint neither waits for the
// writer nor blocks it.
class WalCheckpointer : public std::enable_shared_from_this<WalCheckpointer> {
 public:
  WalCheckpointer(runtime::BlockingPool& pool, std::string path) : pool_(pool), path_(std::move(path)) {}
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;
  ~WalCheckpointer() {
    if (db_ != nullptr) {
      sqlite3_close_v2(db_);
    }
  }

  // Called after each commit of the writer, on its pool thread, with the
  // pages in the WAL. While they are 1,000 or more, keeps one checkpoint
  // queued, because SQLite starts the WAL over only at the first write
  // after a complete checkpoint.
  // Returns true when the writer has to checkpoint itself: the pool is
  // closed, this connection cannot open the file, or the writer never
  // pauses long enough for a checkpoint to complete.
  bool writer_must_checkpoint(int wal_pages) {
    if (wal_pages < kCheckpointPages) {
      return false;
    }
    std::unique_lock lock(mutex_);
    if (wal_pages >= kWriterCheckpointPages || failed_) {
      make_idle(lock);
      return true;
    }
    if (state_ != State::idle) {
      return false;
    }
    auto job = std::make_shared<Job>(shared_from_this());
    if (!runtime::detail::BlockingPoolAccess::submit(pool_, job)) {
      return true;
    }
    state_ = State::queued;
    queued_ = job.get();
    return false;
  }

 private:
  enum class State { idle, queued, running };

  class Job final : public runtime::detail::BlockingJob {
   public:
    explicit Job(std::shared_ptr<WalCheckpointer> owner) : owner_(std::move(owner)) {}
    void execute() noexcept override { owner_->checkpoint(); }
    void deliver() noexcept override {}

   private:
    std::shared_ptr<WalCheckpointer> owner_;
  };

  // Waits until no job checkpoints, so that the writer can: a second
  // checkpoint at the same time gets SQLITE_BUSY. A queued job is dropped,
  // since on a pool of one thread it would wait for this commit.
  void make_idle(std::unique_lock<std::mutex>& lock) {
    if (state_ == State::queued && queued_->claim_for_cancel()) {
      runtime::detail::BlockingPoolAccess::count_cancelled(pool_);
      state_ = State::idle;
      queued_ = nullptr;
    }
    idle_.wait(lock, [this] { return state_ == State::idle; });
  }

  void checkpoint() noexcept {
    {
      const std::lock_guard lock(mutex_);
      state_ = State::running;
      queued_ = nullptr;
    }
    const bool opened = db_ != nullptr || open();
    if (opened) {
      // SQLITE_BUSY (another connection checkpoints) leaves the pages for
      // the next one.
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    {
      const std::lock_guard lock(mutex_);
      failed_ = !opened;
      state_ = State::idle;
    }
    idle_.notify_all();
  }

  bool open() noexcept {
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) == SQLITE_OK &&
        // A connection finds the WAL at its first read. Before that, a
        // checkpoint reports that the database is not in WAL mode.
        sqlite3_exec(db_, "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) == SQLITE_OK) {
      return true;
    }
    sqlite3_close_v2(db_);
    db_ = nullptr;
    return false;
  }

  runtime::BlockingPool& pool_;
  std::string path_;
  // Used by one job at a time.
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  std::condition_variable idle_;
  // The rest is guarded by mutex_.
  State state_ = State::idle;
  // The queued job, valid until a pool thread takes it.
  Job* queued_ = nullptr;
  bool failed_ = false;
};

namespace {

// The writer's WAL hook, which takes the place of SQLite's automatic
// checkpoint.
int after_wal_commit(void* checkpointer, sqlite3* db, const char* database, int wal_pages) {
  const bool inline_checkpoint = std::string_view(database) == "main"
                                     ? static_cast<WalCheckpointer*>(checkpointer)->writer_must_checkpoint(wal_pages)
                                     : wal_pages >= kCheckpointPages;
  if (inline_checkpoint) {
    sqlite3_wal_checkpoint_v2(db, database, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return SQLITE_OK;
}

}  // namespace

SqliteOptions sqlite_options_from_url(DatabaseUrl& url, SqliteOptions options) {
  for (const auto& [key, value] : url.parameters) {
    if (key == "busy_timeout") {
      const std::int64_t milliseconds = parse_number(value, key);
      if (milliseconds > kMaxBusyTimeout.count()) {
        throw UrlError(fmt::format("invalid database URL parameter busy_timeout=`{}`: expected at most {} ms (SQLite "
                                   "takes an int)",
                                   value, kMaxBusyTimeout.count()));
      }
      options.busy_timeout = std::chrono::milliseconds{milliseconds};
    } else if (key == "readers") {
      options.readers = static_cast<std::size_t>(parse_number(value, key));
    } else if (key == "statement_cache_size") {
      options.statement_cache_size = static_cast<std::size_t>(parse_number(value, key));
    } else if (key == "synchronous") {
      if (value != "OFF" && value != "NORMAL" && value != "FULL" && value != "EXTRA") {
        throw UrlError(fmt::format("invalid database URL parameter synchronous=`{}`: expected OFF, NORMAL, FULL or EXTRA",
                                   value));
      }
      options.synchronous = value;
    } else {
      throw UrlError(fmt::format(
          "invalid database URL `{}`: unknown SQLite parameter `{}` (known: busy_timeout, readers, "
          "statement_cache_size, synchronous)",
          url.redacted(), key));
    }
  }
  url.parameters.clear();
  return options;
}

// --- SqliteConnection --------------------------------------------------------------

SqliteConnection::SqliteConnection(runtime::BlockingPool& pool, const SqliteOptions& options, bool writer)
    : pool_(pool), options_(options), writer_(writer) {}

SqliteConnection::~SqliteConnection() { close_blocking(); }

void SqliteConnection::throw_error(int code, std::string_view sql) const {
  const int extended = db_ != nullptr ? sqlite3_extended_errcode(db_) : code;
  const char* message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(code);
  throw SqlError(fmt::format("{} (SQLite error {}: {}; statement `{}`)", message, extended, sqlite3_errstr(code),
                             sql.substr(0, 200)),
                 "", extended);
}

void SqliteConnection::open_blocking(const std::string& path) {
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    close_blocking();
    // SQLite reports only "unable to open database file" for a missing or
    // read-only directory, the usual causes.
    throw ConnectError(fmt::format(
        "cannot open SQLite database `{}`: {}; check that its directory exists and that this process may write to it",
        path, message));
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(options_.busy_timeout.count()));

  // WAL lets readers run while the writer writes; the setting is stored in
  // the file, so setting it again is cheap. In-memory databases ignore it.
  try {
    if (path != ":memory:") {
      exec_blocking("PRAGMA journal_mode=WAL");
      if (writer_) {
        checkpointer_ = std::make_shared<WalCheckpointer>(pool_, path);
        sqlite3_wal_hook(db_, &after_wal_commit, checkpointer_.get());
      }
    }
    exec_blocking(fmt::format("PRAGMA synchronous={}", options_.synchronous).c_str());
    exec_blocking("PRAGMA foreign_keys=ON");
    if (!writer_) {
      exec_blocking("PRAGMA query_only=ON");
    }
  } catch (const SqlError& e) {
    close_blocking();
    throw ConnectError(fmt::format("cannot set up SQLite database `{}`: {}", path, e.what()));
  }
}

void SqliteConnection::close_blocking() noexcept {
  for (auto& [sql, cached] : statements_) {
    sqlite3_finalize(cached.statement);
  }
  statements_.clear();
  statement_lru_.clear();
  if (db_ != nullptr) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
  // After the writer, because a checkpoint may still be running. Whichever
  // of the two connections closes last checkpoints the rest and removes
  // the WAL.
  checkpointer_.reset();
}

void SqliteConnection::exec_blocking(const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    sqlite3_free(error);
    throw_error(rc, sql);
  }
}

sqlite3_stmt* SqliteConnection::prepare_blocking(const std::string& sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) {
    statement_lru_.splice(statement_lru_.begin(), statement_lru_, it->second.lru);
    return it->second.statement;
  }
  sqlite3_stmt* statement = nullptr;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size() + 1), SQLITE_PREPARE_PERSISTENT,
                                    &statement, &tail);
  if (rc != SQLITE_OK) {
    throw_error(rc, sql);
  }
  if (statement == nullptr) {
    throw SqlError(fmt::format("the statement `{}` is empty", sql.substr(0, 200)), "", SQLITE_MISUSE);
  }
  if (tail != nullptr && std::string_view(tail).find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    sqlite3_finalize(statement);
    throw SqlError(fmt::format("`{}` contains more than one statement; use execute_script()", sql.substr(0, 200)), "",
                   SQLITE_MISUSE);
  }

  if (statements_.size() >= options_.statement_cache_size && !statement_lru_.empty()) {
    auto oldest = statements_.find(statement_lru_.back());
    sqlite3_finalize(oldest->second.statement);
    statements_.erase(oldest);
    statement_lru_.pop_back();
  }
  statement_lru_.push_front(sql);
  statements_.emplace(sql, Cached{statement, statement_lru_.begin()});
  return statement;
}

ResultSet SqliteConnection::step_blocking(const std::string& sql, const Params& params) {
  sqlite3_stmt* statement = prepare_blocking(sql);
  StatementReset reset{statement};

  const int count = sqlite3_bind_parameter_count(statement);
  for (int i = 1; i <= count; ++i) {
    const char* name = sqlite3_bind_parameter_name(statement, i);
    const std::size_t number = placeholder_number(name, i);
    if (number == 0) {
      throw SqlError(fmt::format("unsupported placeholder `{}` in `{}`; use $1, $2, ...", name, sql.substr(0, 200)),
                     "", SQLITE_RANGE);
    }
    if (number > params.size()) {
      throw SqlError(fmt::format("placeholder ${} has no argument ({} given) in `{}`", number, params.size(),
                                 sql.substr(0, 200)),
                     "", SQLITE_RANGE);
    }
    const Param& param = params[number - 1];
    int rc = SQLITE_OK;
    switch (param.kind) {
      case Param::Kind::null:
        rc = sqlite3_bind_null(statement, i);
        break;
      case Param::Kind::boolean:
      case Param::Kind::integer:
        rc = sqlite3_bind_int64(statement, i, param.integer);
        break;
      case Param::Kind::real:
        rc = sqlite3_bind_double(statement, i, param.real);
        break;
      case Param::Kind::text:
        rc = sqlite3_bind_text64(statement, i, param.bytes.data(), param.bytes.size(), SQLITE_STATIC, SQLITE_UTF8);
        break;
      case Param::Kind::blob:
        rc = sqlite3_bind_blob64(statement, i, param.bytes.data(), param.bytes.size(), SQLITE_STATIC);
        break;
    }
    if (rc != SQLITE_OK) {
      throw_error(rc, sql);
    }
  }

  ResultSet result;
  const int columns = sqlite3_column_count(statement);
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(columns));
  for (int c = 0; c < columns; ++c) {
    names.emplace_back(sqlite3_column_name(statement, c));
  }
  result.set_columns(std::move(names));

  for (;;) {
    const int rc = sqlite3_step(statement);
    if (rc == SQLITE_DONE) {
      break;
    }
    if (rc != SQLITE_ROW) {
      throw_error(rc, sql);
    }
    for (int c = 0; c < columns; ++c) {
      Cell cell;
      switch (sqlite3_column_type(statement, c)) {
        case SQLITE_INTEGER:
          cell.type = Cell::Type::integer;
          cell.integer = sqlite3_column_int64(statement, c);
          break;
        case SQLITE_FLOAT:
          cell.type = Cell::Type::real;
          cell.real = sqlite3_column_double(statement, c);
          break;
        case SQLITE_TEXT:
        case SQLITE_BLOB: {
          const bool text = sqlite3_column_type(statement, c) == SQLITE_TEXT;
          const void* data = text ? static_cast<const void*>(sqlite3_column_text(statement, c))
                                  : sqlite3_column_blob(statement, c);
          cell.type = text ? Cell::Type::text : Cell::Type::blob;
          cell.size = static_cast<std::size_t>(sqlite3_column_bytes(statement, c));
          // Offset now, pointer after the buffer stops growing.
          cell.integer = static_cast<std::int64_t>(result.append_owned_bytes(data, cell.size));
          break;
        }
        default:
          break;
      }
      result.push_cell(cell);
    }
  }
  result.finish_owned_bytes();
  if (sqlite3_stmt_readonly(statement) == 0) {
    result.set_affected_rows(static_cast<std::uint64_t>(sqlite3_changes64(db_)));
  }
  return result;
}

asio::awaitable<void> SqliteConnection::before_statement() {
  if (db_ == nullptr || broken_) {
    throw ConnectionLostError("SQLite connection is closed after an earlier failure");
  }
  if (in_flight_) {
    throw DbError("a statement is already running on this connection; run statements one at a time");
  }
  if (rollback_pending_) {
    rollback_pending_ = false;
    transaction_open_ = false;
    auto rollback = [this] {
      if (sqlite3_get_autocommit(db_) == 0) {
        exec_blocking("ROLLBACK");
      }
    };
    co_await runtime::offload(pool_, std::move(rollback));
  }
}

namespace {

// Marks a connection busy until the end of one call.
class InFlight {
 public:
  explicit InFlight(bool& flag) : flag_(flag) { flag_ = true; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() { flag_ = false; }

 private:
  bool& flag_;
};

}  // namespace

asio::awaitable<ResultSet> SqliteConnection::run(std::string sql, Params params, bool /*want_rows*/) {
  co_await before_statement();
  const InFlight in_flight(in_flight_);
  // offload() waits for a started job even when cancelled, so the
  // references to this frame's locals stay valid.
  auto job = [this, &sql, &params] { return step_blocking(sql, params); };
  co_return co_await runtime::offload(pool_, std::move(job));
}

asio::awaitable<std::uint64_t> SqliteConnection::run_count(std::string sql, Params params) {
  ResultSet result = co_await run(std::move(sql), std::move(params), false);
  co_return result.affected_rows();
}

asio::awaitable<void> SqliteConnection::run_script(std::string sql) {
  co_await before_statement();
  const InFlight in_flight(in_flight_);
  auto job = [this, &sql] { exec_blocking(sql.c_str()); };
  co_await runtime::offload(pool_, std::move(job));
}

asio::awaitable<std::vector<std::uint64_t>> SqliteConnection::run_in_transaction(std::vector<Statement> statements) {
  co_await before_statement();
  const InFlight in_flight(in_flight_);
  auto job = [this, &statements] {
    exec_blocking(std::string(begin_statement()).c_str());
    std::vector<std::uint64_t> counts;
    counts.reserve(statements.size());
    try {
      for (const Statement& statement : statements) {
        counts.push_back(step_blocking(statement.sql, statement.params).affected_rows());
      }
      exec_blocking("COMMIT");
    } catch (...) {
      if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0) {
        try {
          exec_blocking("ROLLBACK");
        } catch (...) {
          // The caller gets the statement's error, and the pool rolls back
          // when the connection is returned.
        }
      }
      throw;
    }
    return counts;
  };
  co_return co_await runtime::offload(pool_, std::move(job));
}

asio::awaitable<void> SqliteConnection::reset(ResetOnReturn mode) {
  const bool commit = mode == ResetOnReturn::commit && !rollback_pending_;
  rollback_pending_ = false;
  transaction_open_ = false;
  auto finish = [this, commit] {
    if (sqlite3_get_autocommit(db_) == 0) {
      exec_blocking(commit ? "COMMIT" : "ROLLBACK");
    }
  };
  co_await runtime::offload(pool_, std::move(finish));
}

ReturnState SqliteConnection::return_state() const noexcept {
  if (db_ == nullptr || broken_) {
    return ReturnState::broken;
  }
  if (in_flight_) {
    return ReturnState::busy;
  }
  if (rollback_pending_ || transaction_open_ || sqlite3_get_autocommit(db_) == 0) {
    return ReturnState::in_transaction;
  }
  return ReturnState::clean;
}

// --- SqliteDriver ---------------------------------------------------------------------

SqliteDriver::SqliteDriver(DatabaseUrl url, SqliteOptions options, bool writer)
    : url_(std::move(url)), options_(sqlite_options_from_url(url_, std::move(options))), writer_(writer) {
  if (url_.backend != Backend::sqlite) {
    throw UrlError(fmt::format("SqliteDriver needs a sqlite:// URL, not `{}`", url_.redacted()));
  }
  if (options_.blocking_pool == nullptr) {
    throw DbError("SQLite needs a blocking pool: set SqliteOptions::blocking_pool");
  }
  if (options_.busy_timeout < std::chrono::milliseconds{0} || options_.busy_timeout > kMaxBusyTimeout) {
    throw DbError(fmt::format("SqliteOptions::busy_timeout must be 0 to {} ms, got {} ms", kMaxBusyTimeout.count(),
                              options_.busy_timeout.count()));
  }
}

asio::awaitable<std::unique_ptr<SqliteConnection>> SqliteDriver::connect(Clock::time_point /*deadline*/) {
  auto conn = std::make_unique<SqliteConnection>(*options_.blocking_pool, options_, writer_);
  auto open = [raw = conn.get(), path = url_.database] { raw->open_blocking(path); };
  co_await runtime::offload(*options_.blocking_pool, std::move(open));
  co_return conn;
}

void SqliteDriver::close(std::unique_ptr<SqliteConnection> conn) noexcept { conn->close_blocking(); }

}  // namespace sluice::db
