#pragma once

// Shared by the offset-store tests: the behaviour every OffsetStore with a
// journal shares, checked against each store by the same coroutine.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <sluice/updates/offset.hpp>

#include "support/run_on_loop.hpp"

namespace sluice_test {

inline std::vector<std::int64_t> journal_ids(const std::vector<sluice::updates::JournalEntry>& entries) {
  std::vector<std::int64_t> ids;
  for (const auto& entry : entries) {
    ids.push_back(entry.update_id);
  }
  return ids;
}

// Checks `store` (empty, of one bot) against `other` (empty, of another bot
// in the same database or server).
inline boost::asio::awaitable<void> check_journal_contract(sluice::updates::OffsetStore& store,
                                                           sluice::updates::OffsetStore& other) {
  using sluice::updates::JournalEntry;
  EXPECT_TRUE(store.has_journal());
  EXPECT_TRUE((co_await store.journal_load()).empty());

  // Raw text is kept byte for byte, quotes, backslashes and UTF-8 included.
  const std::string odd_text = R"({"update_id":12,"message":{"text":"\"quoted\" \\ ü 😀"}})";
  std::vector<JournalEntry> batch = {
      JournalEntry{.update_id = 12, .raw_json = odd_text},
      JournalEntry{.update_id = 10, .raw_json = R"({"update_id":10})"},
      JournalEntry{.update_id = 11, .raw_json = R"({"update_id":11})"},
  };
  co_await store.journal_append(std::move(batch), 13);
  EXPECT_EQ(co_await store.load(), 13);

  std::vector<JournalEntry> loaded = co_await store.journal_load();
  const std::vector<std::int64_t> all = {10, 11, 12};
  EXPECT_EQ(journal_ids(loaded), all);
  if (loaded.size() == 3) {
    EXPECT_EQ(loaded[2].raw_json, odd_text);
  }

  // Removing an id that is not there changes nothing else.
  std::vector<std::int64_t> handled = {10, 12, 99};
  co_await store.journal_remove(std::move(handled));
  const std::vector<std::int64_t> left = {11};
  EXPECT_EQ(journal_ids(co_await store.journal_load()), left);

  // An empty batch still moves the offset; appending an id again keeps one entry.
  std::vector<JournalEntry> none;
  co_await store.journal_append(std::move(none), 20);
  EXPECT_EQ(co_await store.load(), 20);
  std::vector<JournalEntry> again = {JournalEntry{.update_id = 11, .raw_json = R"({"update_id":11})"}};
  co_await store.journal_append(std::move(again), 21);
  EXPECT_EQ(journal_ids(co_await store.journal_load()), left);

  // A full batch of 100 updates (the SQL store inserts it in chunks).
  std::vector<JournalEntry> full;
  std::vector<std::int64_t> expected = left;
  for (std::int64_t id = 100; id < 200; ++id) {
    full.push_back(JournalEntry{.update_id = id, .raw_json = R"({"update_id":)" + std::to_string(id) + "}"});
    expected.push_back(id);
  }
  co_await store.journal_append(std::move(full), 200);
  EXPECT_EQ(co_await store.load(), 200);
  std::vector<JournalEntry> after_full = co_await store.journal_load();
  EXPECT_EQ(journal_ids(after_full), expected);
  if (after_full.size() == expected.size()) {
    EXPECT_EQ(after_full.back().raw_json, R"({"update_id":199})");
  }

  EXPECT_TRUE((co_await other.journal_load()).empty());
  EXPECT_FALSE((co_await other.load()).has_value());
}

}  // namespace sluice_test
