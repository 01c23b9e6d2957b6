#pragma once

// Shared by the SQLite and PostgreSQL tests: Connection::execute_in_transaction
// checked against each backend by the same coroutine.

#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <gtest/gtest.h>

#include <sluice/db/database.hpp>

namespace sluice::db::testing {

// Returns whether execute_in_transaction(statements) throws an E.
template <class E>
boost::asio::awaitable<bool> transaction_throws(Connection& conn, std::vector<Statement> statements) {
  try {
    co_await conn.execute_in_transaction(std::move(statements));
  } catch (const E&) {
    co_return true;
  }
  co_return false;
}

// Creates `table`, which must not exist, and checks the call on it.
inline boost::asio::awaitable<void> check_execute_in_transaction(Database& db, const std::string& table) {
  co_await db.execute("CREATE TABLE " + table + " (v INTEGER PRIMARY KEY)");
  auto conn = co_await db.acquire();

  std::vector<Statement> good;
  good.emplace_back("INSERT INTO " + table + " VALUES ($1)", 1);
  good.emplace_back("INSERT INTO " + table + " VALUES ($1), ($2)", 2, 3);
  good.emplace_back("UPDATE " + table + " SET v = v + 10 WHERE v > $1", 1);
  const std::vector<std::uint64_t> counts = co_await conn->execute_in_transaction(std::move(good));
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{1, 2, 2}));

  // The second statement breaks the primary key: the first is undone too.
  std::vector<Statement> bad;
  bad.emplace_back("INSERT INTO " + table + " VALUES ($1)", 4);
  bad.emplace_back("INSERT INTO " + table + " VALUES ($1)", 1);
  EXPECT_TRUE(co_await transaction_throws<SqlError>(*conn, std::move(bad)));

  // The connection is usable and outside any transaction afterwards.
  auto rows = co_await conn->query("SELECT v FROM " + table + " ORDER BY v");
  std::vector<int> values;
  for (auto row : rows) {
    values.push_back(row.get<int>(0));
  }
  EXPECT_EQ(values, (std::vector<int>{1, 12, 13}));

  // Inside a transaction begun with begin(), the call is rejected.
  auto transaction = co_await conn->begin();
  std::vector<Statement> nested;
  nested.emplace_back("INSERT INTO " + table + " VALUES ($1)", 5);
  EXPECT_TRUE(co_await transaction_throws<DbError>(*conn, std::move(nested)));
  co_await transaction.rollback();
}

}  // namespace sluice::db::testing
