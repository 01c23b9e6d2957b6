#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <sluice/fsm/storage.hpp>

namespace sluice::fsm {

/// The conversation of the update being handled: its record as read when
/// the key's lock was taken, and writes that go straight to the storage.
///
///     if (ctx.state().state() == "signup:email") {
///       boost::json::object email{{"email", std::string(ctx.text())}};
///       co_await ctx.state().update_data(std::move(email));
///       co_await ctx.state().clear();
///     }
///
/// The Bot holds the key's lock while the handler runs, so the record
/// seen here is what the storage holds, unless the record expired in
/// between or code bypassed the lock. Each write stores the whole record
/// and restarts its time to live. Not thread-safe; the storage must
/// outlive the object.
class Conversation {
 public:
  /// `record` is the stored record of `key` (nullopt when none);
  /// `default_ttl` is the time to live of writes that give none.
  Conversation(Storage& storage, StorageKey key, std::optional<StateRecord> record,
               std::optional<std::chrono::milliseconds> default_ttl = std::nullopt);

  const StorageKey& key() const noexcept { return key_; }

  /// The record, or nullopt when the conversation has none.
  const std::optional<StateRecord>& get() const noexcept { return record_; }
  /// The state's name; empty when in no state.
  std::string_view state() const noexcept;
  /// The data; empty when none.
  const boost::json::object& data() const noexcept;

  /// Sets the state, keeping the data. `ttl` replaces the time to live of
  /// this write and the later ones through this object.
  boost::asio::awaitable<void> set_state(std::string name,
                                         std::optional<std::chrono::milliseconds> ttl = std::nullopt);
  /// Merges `values` into the data (a key present in both takes the new
  /// value) and stores the record.
  boost::asio::awaitable<void> update_data(boost::json::object values);
  /// Replaces the data, keeping the state.
  boost::asio::awaitable<void> set_data(boost::json::object data);
  /// Removes the record: no state and no data.
  boost::asio::awaitable<void> clear();

 private:
  boost::asio::awaitable<void> store(StateRecord record);

  Storage* storage_;
  StorageKey key_;
  std::optional<StateRecord> record_;
  std::optional<std::chrono::milliseconds> ttl_;
};

}  // namespace sluice::fsm
