// SqlOffsetStore against the PostgreSQL server of scripts/with-services.sh.

#include <chrono>
#include <exception>
#include <string>

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <gtest/gtest.h>

#include <sluice/db/database.hpp>
#include <sluice/updates/offset.hpp>

#include "../../unit/updates/journal_contract.hpp"
#include "../db/postgres_support.hpp"

namespace {

namespace asio = boost::asio;

constexpr std::chrono::seconds kMaxTestTime{30};

asio::awaitable<void> journal_on_postgres(std::string url) {
  // The executor is read first: g++ 12 destroys the default options
  // argument twice when a co_await appears in the same full-expression.
  const auto executor = co_await asio::this_coro::executor;
  sluice::db::Database database(executor, url);
  // Bot ids unique to this process keep runs that share the server apart.
  const std::string bot = "journal-" + std::to_string(::getpid());
  sluice::updates::SqlOffsetStore store(database, bot + "-a");
  sluice::updates::SqlOffsetStore other(database, bot + "-b");
  co_await store.create_tables();
  co_await sluice_test::check_journal_contract(store, other);
  co_await database.execute("DELETE FROM sluice_update_journal WHERE bot_id = $1", bot + "-a");
  co_await database.execute("DELETE FROM sluice_update_offset WHERE bot_id = $1", bot + "-a");
  co_await database.close();
}

TEST(SqlOffsetStore, KeepsJournalContractOnPostgres) {
  SLUICE_REQUIRE_POSTGRES(url);
  asio::io_context io;
  std::exception_ptr failure;
  bool finished = false;
  asio::co_spawn(io, journal_on_postgres(url), [&](std::exception_ptr error) {
    failure = error;
    finished = true;
  });
  io.run_for(kMaxTestTime);
  ASSERT_TRUE(finished) << "test did not finish within " << kMaxTestTime.count() << " s";
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      FAIL() << "test threw: " << error.what();
    }
  }
}

}  // namespace
