#pragma once

namespace sluice::db {

/// The state a driver reports for a connection its holder returns to the pool.
enum class ReturnState {
  clean,           ///< no transaction open, nothing in flight: reusable as is
  in_transaction,  ///< a transaction is open: reset_on_return decides
  busy,            ///< a statement is in flight (its holder was cancelled)
  broken,          ///< unusable (protocol error, invalidated by its holder)
  disconnected,    ///< the server went away: every older connection is suspect
};

}  // namespace sluice::db
