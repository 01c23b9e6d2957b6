#include <sluice/db/postgres.hpp>

#include <charconv>
#include <cstring>

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <libpq-fe.h>

#include <sluice/runtime/offload.hpp>

namespace sluice::db {
namespace asio = boost::asio;

namespace {

// PostgreSQL type OID of bytea (pg_type.h), whose text output is hex.
constexpr Oid kByteaOid = 17;

// Each prepared statement gets a name with this prefix and a counter.
constexpr std::string_view kStatementPrefix = "sluice_";

// Puts a libpq message on one line: libpq ends it with a newline and
// indents hint lines with "\n\t".
std::string trim_message(const char* message) {
  std::string text;
  for (const char* c = message; c != nullptr && *c != '\0'; ++c) {
    if (*c == '\n' || *c == '\t') {
      if (!text.empty() && text.back() != ' ') {
        text.push_back(' ');
      }
      continue;
    }
    text.push_back(*c);
  }
  while (!text.empty() && text.back() == ' ') {
    text.pop_back();
  }
  return text;
}

void clear_result(void* result) { PQclear(static_cast<PGresult*>(result)); }

// Logs server notices (NOTICE, WARNING) at debug level instead of libpq's
// default of printing them on stderr.
void log_notice(void* /*arg*/, const char* message) {
  detail::db_logger()->debug("server notice: {}", trim_message(message));
}

bool parse_bool(std::string_view text, std::string_view key) {
  if (text == "true" || text == "on" || text == "1" || text == "yes") {
    return true;
  }
  if (text == "false" || text == "off" || text == "0" || text == "no") {
    return false;
  }
  throw UrlError(fmt::format("invalid database URL parameter {}=`{}`: expected true or false", key, text));
}

std::int64_t parse_number(std::string_view text, std::string_view key) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value < 0) {
    throw UrlError(fmt::format("invalid database URL parameter {}=`{}`: expected a non-negative integer", key, text));
  }
  return value;
}

}  // namespace

// All results of one statement: the last result, or the first error.
struct PgConnection::Results {
  std::unique_ptr<PGresult, void (*)(PGresult*)> last{nullptr, PQclear};
  std::string error_message;
  std::string sqlstate;
  bool failed = false;
};

PgOptions pg_options_from_url(DatabaseUrl& url, PgOptions options) {
  auto& params = url.parameters;
  for (auto it = params.begin(); it != params.end();) {
    const auto& [key, value] = *it;
    if (key == "query_timeout") {
      options.query_timeout = std::chrono::milliseconds{parse_number(value, key)};
    } else if (key == "statement_cache") {
      options.statement_cache = parse_bool(value, key);
    } else if (key == "statement_cache_size") {
      options.statement_cache_size = static_cast<std::size_t>(parse_number(value, key));
    } else if (key == "keepalives_idle") {
      options.keepalives_idle = std::chrono::seconds{parse_number(value, key)};
    } else if (key == "keepalives_interval") {
      options.keepalives_interval = std::chrono::seconds{parse_number(value, key)};
    } else if (key == "keepalives_count") {
      options.keepalives_count = static_cast<int>(parse_number(value, key));
    } else if (key == "tcp_user_timeout") {
      options.tcp_user_timeout = std::chrono::milliseconds{parse_number(value, key)};
    } else if (key == "application_name") {
      options.application_name = value;
    } else {
      ++it;
      continue;
    }
    it = params.erase(it);
  }
  return options;
}

// --- PgConnection -------------------------------------------------------------

PgConnection::PgConnection(asio::any_io_executor executor, const PgOptions& options)
    : executor_(std::move(executor)), options_(options), socket_(executor_), timer_(executor_) {}

PgConnection::~PgConnection() { close(); }

int PgConnection::backend_pid() const noexcept { return conn_ != nullptr ? PQbackendPID(conn_) : 0; }

void PgConnection::close() noexcept {
  // libpq owns the socket: release it from Asio before PQfinish closes it.
  if (socket_.is_open()) {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    (void)socket_.release();
  }
  socket_fd_ = -1;
  if (conn_ != nullptr) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
}

void PgConnection::refresh_socket() {
  const int fd = PQsocket(conn_);
  if (fd == socket_fd_) {
    return;
  }
  if (socket_.is_open()) {
    (void)socket_.release();
  }
  socket_fd_ = fd;
  if (fd >= 0) {
    socket_.assign(fd);
  }
}

void PgConnection::fail_lost(const std::string& what) {
  health_ = Health::lost;
  in_flight_ = false;
  throw ConnectionLostError(fmt::format("PostgreSQL connection lost: {}", what));
}

Clock::time_point PgConnection::statement_deadline() const {
  if (options_.query_timeout.count() <= 0) {
    return Clock::time_point::max();
  }
  return Clock::now() + options_.query_timeout;
}

// Waits until the socket is readable (or writable). Past the deadline it
// throws QueryTimeoutError and marks the connection broken. A cancelled
// caller gets operation_aborted, and the statement stays in flight.
asio::awaitable<void> PgConnection::wait(bool for_write, Clock::time_point deadline) {
  const auto type = for_write ? asio::posix::stream_descriptor::wait_write : asio::posix::stream_descriptor::wait_read;
  if (deadline == Clock::time_point::max()) {
    co_await socket_.async_wait(type, asio::use_awaitable);
    co_return;
  }

  timer_.expires_at(deadline);
  auto group = asio::experimental::make_parallel_group(socket_.async_wait(type, asio::deferred),
                                                       timer_.async_wait(asio::deferred));
  auto [order, socket_error, timer_error] =
      co_await std::move(group).async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
  if (order[0] == 0 && !socket_error) {
    co_return;
  }
  if (order[0] == 1 && !timer_error) {
    health_ = Health::broken;
    in_flight_ = false;
    throw QueryTimeoutError(fmt::format("PostgreSQL did not answer within {} ms; the connection is closed",
                                        std::chrono::duration_cast<std::chrono::milliseconds>(
                                            options_.query_timeout.count() > 0 ? options_.query_timeout
                                                                               : std::chrono::milliseconds{0})
                                            .count()));
  }
  const auto error = order[0] == 0 ? socket_error : timer_error;
  throw boost::system::system_error(error);
}

asio::awaitable<void> PgConnection::connect(std::vector<std::string> keys, std::vector<std::string> values,
                                           Clock::time_point deadline) {
  std::vector<const char*> key_ptrs;
  std::vector<const char*> value_ptrs;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    key_ptrs.push_back(keys[i].c_str());
    value_ptrs.push_back(values[i].c_str());
  }
  key_ptrs.push_back(nullptr);
  value_ptrs.push_back(nullptr);

  conn_ = PQconnectStartParams(key_ptrs.data(), value_ptrs.data(), 0);
  if (conn_ == nullptr) {
    throw ConnectError("PostgreSQL connect failed: libpq is out of memory");
  }
  if (PQstatus(conn_) == CONNECTION_BAD) {
    throw ConnectError(fmt::format("PostgreSQL connect failed: {}", trim_message(PQerrorMessage(conn_))));
  }
  PQsetNoticeProcessor(conn_, &log_notice, nullptr);

  // PQconnectPoll's protocol: start as if it returned PGRES_POLLING_WRITING.
  auto status = PGRES_POLLING_WRITING;
  for (;;) {
    refresh_socket();
    if (status == PGRES_POLLING_OK) {
      break;
    }
    if (status == PGRES_POLLING_FAILED) {
      throw ConnectError(fmt::format("PostgreSQL connect failed: {}", trim_message(PQerrorMessage(conn_))));
    }
    try {
      co_await wait(status == PGRES_POLLING_WRITING, deadline);
    } catch (const QueryTimeoutError&) {
      throw ConnectError("PostgreSQL connect timed out");
    }
    status = PQconnectPoll(conn_);
  }

  if (PQsetnonblocking(conn_, 1) != 0) {
    throw ConnectError(fmt::format("PostgreSQL connect failed: {}", trim_message(PQerrorMessage(conn_))));
  }
  health_ = Health::ok;
}

asio::awaitable<void> PgConnection::flush(Clock::time_point deadline) {
  for (;;) {
    const int result = PQflush(conn_);
    if (result == 0) {
      co_return;
    }
    if (result < 0) {
      fail_lost(trim_message(PQerrorMessage(conn_)));
    }
    co_await wait(true, deadline);
  }
}

asio::awaitable<PgConnection::Results> PgConnection::read_results(Clock::time_point deadline) {
  Results results;
  for (;;) {
    if (PQconsumeInput(conn_) == 0) {
      fail_lost(trim_message(PQerrorMessage(conn_)));
    }
    if (PQisBusy(conn_) != 0) {
      co_await wait(false, deadline);
      continue;
    }
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) {
      break;
    }
    std::unique_ptr<PGresult, void (*)(PGresult*)> result(raw, PQclear);
    const auto status = PQresultStatus(raw);
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
      if (!results.failed) {
        results.failed = true;
        const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
        results.error_message = trim_message(primary != nullptr ? primary : PQresultErrorMessage(raw));
        const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
        results.sqlstate = state != nullptr ? state : "";
      }
      continue;
    }
    if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      health_ = Health::broken;
      in_flight_ = false;
      throw DbError("COPY is not supported by sluice::db; the connection is closed");
    }
    results.last = std::move(result);
  }
  in_flight_ = false;

  if (results.failed) {
    const bool gone = PQstatus(conn_) == CONNECTION_BAD || is_disconnect_sqlstate(results.sqlstate);
    if (gone) {
      health_ = Health::lost;
    }
    if (gone && results.sqlstate.empty()) {
      throw ConnectionLostError(fmt::format("PostgreSQL connection lost: {}", results.error_message));
    }
    throw SqlError(fmt::format("{} (SQLSTATE {})", results.error_message, results.sqlstate), results.sqlstate);
  }
  co_return results;
}

asio::awaitable<void> PgConnection::simple(const char* sql, Clock::time_point deadline) {
  if (PQsendQuery(conn_, sql) == 0) {
    fail_lost(trim_message(PQerrorMessage(conn_)));
  }
  in_flight_ = true;
  co_await flush(deadline);
  co_await read_results(deadline);
}

asio::awaitable<void> PgConnection::before_statement(Clock::time_point deadline) {
  if (health_ != Health::ok || conn_ == nullptr) {
    throw ConnectionLostError("PostgreSQL connection is closed after an earlier failure");
  }
  if (in_flight_) {
    throw DbError("a statement is already running on this connection; run statements one at a time");
  }
  if (rollback_pending_) {
    rollback_pending_ = false;
    transaction_open_ = false;
    co_await simple("ROLLBACK", deadline);
  }
}

asio::awaitable<const std::string*> PgConnection::prepare(const std::string& sql, std::size_t param_count,
                                                          Clock::time_point deadline) {
  if (auto it = statements_.find(sql); it != statements_.end()) {
    statement_lru_.splice(statement_lru_.begin(), statement_lru_, it->second.lru);
    co_return &it->second.name;
  }

  if (statements_.size() >= options_.statement_cache_size && !statement_lru_.empty()) {
    auto oldest = statements_.find(statement_lru_.back());
    const std::string deallocate = "DEALLOCATE " + oldest->second.name;
    statement_lru_.pop_back();
    statements_.erase(oldest);
    co_await simple(deallocate.c_str(), deadline);
  }

  std::string name = fmt::format("{}{}", kStatementPrefix, ++next_statement_);
  if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(param_count), nullptr) == 0) {
    fail_lost(trim_message(PQerrorMessage(conn_)));
  }
  in_flight_ = true;
  co_await flush(deadline);
  co_await read_results(deadline);

  statement_lru_.push_front(sql);
  auto [it, inserted] = statements_.emplace(sql, Prepared{std::move(name), statement_lru_.begin()});
  co_return &it->second.name;
}

asio::awaitable<PgConnection::Results> PgConnection::execute(const std::string& sql, const Params& params,
                                                             Clock::time_point deadline) {
  co_await before_statement(deadline);

  // Text format for every value except blobs, which go as binary bytea.
  std::vector<std::string> texts(params.size());
  std::vector<const char*> values(params.size(), nullptr);
  std::vector<int> lengths(params.size(), 0);
  std::vector<int> formats(params.size(), 0);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& param = params[i];
    switch (param.kind) {
      case Param::Kind::null:
        break;
      case Param::Kind::boolean:
        values[i] = param.integer != 0 ? "true" : "false";
        break;
      case Param::Kind::integer:
        texts[i] = std::to_string(param.integer);
        values[i] = texts[i].c_str();
        break;
      case Param::Kind::real:
        texts[i] = fmt::format("{}", param.real);
        values[i] = texts[i].c_str();
        break;
      case Param::Kind::text:
        values[i] = param.bytes.c_str();
        break;
      case Param::Kind::blob:
        values[i] = param.bytes.data();
        lengths[i] = static_cast<int>(param.bytes.size());
        formats[i] = 1;
        break;
    }
  }

  int sent = 0;
  const std::string* statement = nullptr;
  if (options_.statement_cache) {
    statement = co_await prepare(sql, params.size(), deadline);
    sent = PQsendQueryPrepared(conn_, statement->c_str(), static_cast<int>(params.size()), values.data(),
                               lengths.data(), formats.data(), 0);
  } else {
    sent = PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                             lengths.data(), formats.data(), 0);
  }
  if (sent == 0) {
    fail_lost(trim_message(PQerrorMessage(conn_)));
  }
  in_flight_ = true;
  co_await flush(deadline);
  try {
    co_return co_await read_results(deadline);
  } catch (const SqlError&) {
    // A cached plan can go stale (schema change, DISCARD ALL): prepare it
    // again next time.
    if (statement != nullptr) {
      if (auto it = statements_.find(sql); it != statements_.end()) {
        statement_lru_.erase(it->second.lru);
        statements_.erase(it);
      }
    }
    throw;
  }
}

asio::awaitable<ResultSet> PgConnection::run(std::string sql, Params params, bool /*want_rows*/) {
  const auto deadline = statement_deadline();
  Results results = co_await execute(sql, params, deadline);

  ResultSet set;
  PGresult* raw = results.last.get();
  if (raw == nullptr) {
    co_return set;
  }
  const int columns = PQnfields(raw);
  const int rows = PQntuples(raw);
  std::vector<std::string> names;
  std::vector<bool> hex(static_cast<std::size_t>(columns));
  names.reserve(static_cast<std::size_t>(columns));
  for (int c = 0; c < columns; ++c) {
    names.emplace_back(PQfname(raw, c));
    hex[static_cast<std::size_t>(c)] = PQftype(raw, c) == kByteaOid;
  }
  set.set_columns(std::move(names));
  set.reserve_rows(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < columns; ++c) {
      Cell cell;
      if (PQgetisnull(raw, r, c) == 0) {
        cell.type = hex[static_cast<std::size_t>(c)] ? Cell::Type::hex_blob : Cell::Type::text;
        cell.data = PQgetvalue(raw, r, c);
        cell.size = static_cast<std::size_t>(PQgetlength(raw, r, c));
      }
      set.push_cell(cell);
    }
  }
  const char* affected = PQcmdTuples(raw);
  if (affected != nullptr && *affected != '\0') {
    set.set_affected_rows(std::strtoull(affected, nullptr, 10));
  }
  set.keep_alive(results.last.release(), &clear_result);
  co_return set;
}

asio::awaitable<std::uint64_t> PgConnection::run_count(std::string sql, Params params) {
  const auto deadline = statement_deadline();
  Results results = co_await execute(sql, params, deadline);
  if (results.last == nullptr) {
    co_return 0;
  }
  const char* affected = PQcmdTuples(results.last.get());
  co_return affected != nullptr && *affected != '\0' ? std::strtoull(affected, nullptr, 10) : 0;
}

asio::awaitable<void> PgConnection::run_script(std::string sql) {
  const auto deadline = statement_deadline();
  co_await before_statement(deadline);
  co_await simple(sql.c_str(), deadline);
}

asio::awaitable<void> PgConnection::ping(Clock::time_point deadline) {
  if (conn_ == nullptr || health_ != Health::ok || PQstatus(conn_) != CONNECTION_OK) {
    throw ConnectionLostError("PostgreSQL connection is closed");
  }
  // An empty query is the cheapest round trip (pgbouncer's default check).
  co_await simple("", deadline);
}

asio::awaitable<void> PgConnection::reset(ResetOnReturn mode, Clock::time_point deadline) {
  if (conn_ == nullptr || health_ != Health::ok) {
    throw ConnectionLostError("PostgreSQL connection is closed");
  }
  if (in_flight_) {
    if (options_.blocking_pool == nullptr) {
      throw DbError("statement in flight and no blocking pool to cancel it");
    }
    // PQcancel opens a second connection and blocks until the server has
    // read the request, so it runs on the blocking pool.
    // NOTE: against a server that accepts TCP but never responds (stopped
    // process), PQcancel blocks its thread until the server resumes.
    PGcancel* cancel = PQgetCancel(conn_);
    if (cancel == nullptr) {
      throw DbError("cannot create a cancel request");
    }
    auto send_cancel = [cancel] {
      char error[256];
      const int sent = PQcancel(cancel, error, sizeof error);
      PQfreeCancel(cancel);
      return sent != 0;
    };
    co_await runtime::offload(*options_.blocking_pool, std::move(send_cancel));
    // Drain what the cancelled statement sends (an error 57014 or its rows).
    try {
      co_await read_results(deadline);
    } catch (const SqlError&) {
    }
  }

  const auto status = PQtransactionStatus(conn_);
  if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR || rollback_pending_) {
    const bool commit = mode == ResetOnReturn::commit && status == PQTRANS_INTRANS && !rollback_pending_;
    rollback_pending_ = false;
    transaction_open_ = false;
    if (status != PQTRANS_IDLE) {
      co_await simple(commit ? "COMMIT" : "ROLLBACK", deadline);
    }
  }
}

ReturnState PgConnection::return_state() const noexcept {
  if (conn_ == nullptr || health_ == Health::lost) {
    return ReturnState::disconnected;
  }
  if (health_ == Health::broken) {
    return ReturnState::broken;
  }
  if (PQstatus(conn_) == CONNECTION_BAD) {
    return ReturnState::disconnected;
  }
  if (in_flight_) {
    return ReturnState::busy;
  }
  switch (PQtransactionStatus(conn_)) {
    case PQTRANS_IDLE:
      return rollback_pending_ || transaction_open_ ? ReturnState::in_transaction : ReturnState::clean;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
      return ReturnState::in_transaction;
    case PQTRANS_ACTIVE:
      return ReturnState::busy;
    case PQTRANS_UNKNOWN:
      break;
  }
  return ReturnState::disconnected;
}

// --- PgDriver -------------------------------------------------------------------

PgDriver::PgDriver(asio::any_io_executor executor, DatabaseUrl url, PgOptions options)
    : executor_(std::move(executor)), url_(std::move(url)), options_(pg_options_from_url(url_, std::move(options))) {
  if (url_.backend != Backend::postgresql) {
    throw UrlError(fmt::format("PgDriver needs a postgresql:// URL, not `{}`", url_.redacted()));
  }
}

asio::awaitable<std::unique_ptr<PgConnection>> PgDriver::connect(Clock::time_point deadline) {
  std::vector<std::string> keys;
  std::vector<std::string> values;
  auto add = [&](std::string key, std::string value) {
    keys.push_back(std::move(key));
    values.push_back(std::move(value));
  };

  // libpq resolves host names with a blocking getaddrinfo(); resolve here
  // and give libpq the address (hostaddr), keeping `host` for TLS checks.
  if (!url_.host.empty()) {
    add("host", url_.host);
    if (!url_.host.starts_with('/')) {
      boost::system::error_code parse_error;
      const auto address = asio::ip::make_address(url_.host, parse_error);
      if (!parse_error) {
        add("hostaddr", address.to_string());
      } else {
        asio::ip::tcp::resolver resolver(executor_);
        boost::system::error_code resolve_error;
        auto token = asio::redirect_error(asio::use_awaitable, resolve_error);
        auto endpoints = co_await resolver.async_resolve(url_.host, std::to_string(url_.port), token);
        if (resolve_error || endpoints.empty()) {
          throw ConnectError(fmt::format("PostgreSQL connect failed: cannot resolve host `{}`: {}", url_.host,
                                         resolve_error ? resolve_error.message() : "no addresses"));
        }
        add("hostaddr", endpoints.begin()->endpoint().address().to_string());
      }
    }
  }
  add("port", std::to_string(url_.port));
  if (!url_.user.empty()) {
    add("user", url_.user);
  }
  if (!url_.password.empty()) {
    add("password", url_.password);
  }
  if (!url_.database.empty()) {
    add("dbname", url_.database);
  }
  add("application_name", options_.application_name);
  add("client_encoding", "UTF8");
  add("keepalives", "1");
  add("keepalives_idle", std::to_string(options_.keepalives_idle.count()));
  add("keepalives_interval", std::to_string(options_.keepalives_interval.count()));
  add("keepalives_count", std::to_string(options_.keepalives_count));
  add("tcp_user_timeout", std::to_string(options_.tcp_user_timeout.count()));
  for (const auto& [key, value] : url_.parameters) {
    add(key, value);
  }

  auto conn = std::make_unique<PgConnection>(executor_, options_);
  try {
    co_await conn->connect(std::move(keys), std::move(values), deadline);
  } catch (const ConnectError& e) {
    // libpq messages name host and port but never the password, and the
    // redacted URL names the server that was meant.
    throw ConnectError(fmt::format("{} (url {})", e.what(), url_.redacted()));
  }
  co_return conn;
}

void PgDriver::close(std::unique_ptr<PgConnection> conn) noexcept { conn->close(); }

}  // namespace sluice::db
