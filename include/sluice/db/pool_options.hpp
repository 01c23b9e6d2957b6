#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace sluice::db {

/// Action taken on a connection that comes back inside a transaction
/// (SQLAlchemy's `reset_on_return`).
enum class ResetOnReturn {
  rollback,  ///< Roll the transaction back (default, as SQLAlchemy).
  commit,    ///< Commit it.
  none,      ///< Leave it; the connection is closed instead of reused.
};

/// Settings of a `Pool`. The first seven keep SQLAlchemy's `QueuePool` names,
/// meanings and defaults; the rest bound what SQLAlchemy leaves unbounded.
/// All durations are std::chrono::milliseconds; a zero or negative value
/// turns the feature off where its comment states it.
struct PoolOptions {
  /// Pool name used in log lines, error messages and metrics.
  std::string name = "main";

  /// Connections kept open while idle. Default 5 (SQLAlchemy). 0 keeps none:
  /// every connection is closed when returned (see null_pool()). Unlike
  /// SQLAlchemy, 0 does not mean "no limit"; use max_overflow = -1 for that.
  std::size_t pool_size = 5;

  /// Connections opened above pool_size during a burst; one is closed when
  /// it comes back while pool_size connections are already idle. At most
  /// pool_size + max_overflow connections are open. -1 removes the limit.
  /// Default 10 (SQLAlchemy).
  std::int32_t max_overflow = 10;

  /// How long acquire() waits for a connection before PoolTimeoutError.
  /// Default 30 s (SQLAlchemy). A caller's deadline shortens it, never lengthens.
  std::chrono::milliseconds pool_timeout{30'000};

  /// A connection older than this is closed and replaced at checkout (each
  /// connection's limit is shortened by up to 2.5 % at random so that
  /// connections opened together do not expire together). Negative = never.
  /// Default -1 (SQLAlchemy). Connections being held are never recycled.
  std::chrono::milliseconds pool_recycle{-1};

  /// Test a connection with a round trip at checkout (see
  /// pre_ping_idle_threshold). A failed test replaces it without the caller
  /// seeing an error, and invalidates every idle connection opened before
  /// the failure. Default false (SQLAlchemy). Drivers that cannot lose their
  /// server (SQLite) are never pinged.
  bool pool_pre_ping = false;

  /// Hand out the most recently returned idle connection first (LIFO), which
  /// lets surplus connections age out under idle_timeout. Default false: FIFO
  /// (SQLAlchemy).
  bool pool_use_lifo = false;

  /// See ResetOnReturn. Default rollback (SQLAlchemy).
  ResetOnReturn reset_on_return = ResetOnReturn::rollback;

  /// Callers allowed to wait at once; one more fails at once with
  /// PoolExhaustedError. Default 1024: a queue that long already means
  /// seconds of backlog for a bot, and each waiter keeps a handler's memory alive.
  /// 0 = no limit.
  std::size_t max_waiters = 1024;

  /// Connects in progress at once. Default 2: a burst of callers is served by
  /// connections as they are returned instead of by a storm of logins, which
  /// the server handles one process fork at a time. 0 = no limit.
  std::size_t connecting_limit = 2;

  /// Deadline of one connect attempt, including name resolution and login.
  /// Default 10 s.
  std::chrono::milliseconds connect_timeout{10'000};

  /// Close a connection that has been idle this long (checked by the
  /// maintenance task at least once a second). Default 0 = never (SQLAlchemy keeps
  /// pool_size connections for ever).
  std::chrono::milliseconds idle_timeout{0};

  /// Ping a connection that has been idle this long, so that a dead peer or
  /// a firewall that drops quiet connections is found before a caller needs
  /// it. Skipped while callers wait. Default 0 = off (the drivers set TCP
  /// keepalives instead).
  std::chrono::milliseconds keepalive_interval{0};

  /// With pool_pre_ping, ping only connections idle at least this long. 0
  /// (default) pings at every checkout, as SQLAlchemy does. A connection
  /// opened for this checkout is never pinged.
  std::chrono::milliseconds pre_ping_idle_threshold{0};

  /// Log a warning, with the acquisition site, when a connection is held
  /// longer than this. Default 1 s: an OLTP statement takes milliseconds, so
  /// a longer hold usually means waiting on something else (a Bot API call)
  /// while holding the connection. 0 = off.
  /// NOTE: the warning is logged when the connection is returned; one that
  /// is never returned shows only in stats().in_use.
  std::chrono::milliseconds hold_warning_threshold{1'000};

  /// Deadline for cleaning a connection returned mid-query or inside a
  /// transaction (cancel, drain, roll back); past it the connection is
  /// closed. Default 2 s.
  std::chrono::milliseconds cleanup_timeout{2'000};

  /// First delay before retrying a failed connect; it doubles per failure up
  /// to connect_backoff_max, and each delay is drawn from [d/2, d].
  /// Defaults 50 ms and 500 ms: a restarted server is back in use within
  /// half a second of accepting connections.
  std::chrono::milliseconds connect_backoff_initial{50};
  std::chrono::milliseconds connect_backoff_max{500};

  /// After this many consecutive connect failures, acquire() fails at once
  /// with the last connect error until a probe connect (one per backoff
  /// delay) succeeds. Default 2.
  std::uint32_t connect_failure_threshold = 2;

  /// No pooling: connect at checkout, close on return (SQLAlchemy's NullPool).
  /// For scripts and migrations, so that nothing keeps a connection open.
  static PoolOptions null_pool();

  /// Suggested sizes for a server: pool_size = 2 x cpu_count (the usual
  /// formula for SSD-backed servers: cores x 2 + spindles), both it and the
  /// total capped by this instance's share of `server_max_connections`
  /// (minus 3 connections kept for administrators), max_overflow = pool_size.
  static PoolOptions sized_for(std::size_t cpu_count, std::size_t server_max_connections,
                               std::size_t instances = 1);
};

}  // namespace sluice::db
