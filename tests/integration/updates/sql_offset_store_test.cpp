// SqlOffsetStore against the PostgreSQL server of scripts/with-services.sh.

#include <chrono>
#include <string>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <sluice/db/database.hpp>
#include <sluice/updates/offset.hpp>

#include "../../unit/updates/offset_store_checks.hpp"
#include "../db/postgres_support.hpp"

namespace {

namespace asio = boost::asio;

constexpr std::chrono::seconds kMaxTestTime{30};

TEST(SqlOffsetStore, KeepsJournalContractOnPostgres) {
  SLUICE_REQUIRE_POSTGRES(url);
  sluice_test::run_on_loop(kMaxTestTime, [url](asio::io_context& io) -> asio::awaitable<void> {
    sluice::db::Database database(io.get_executor(), url);
    // Bot ids unique to this process keep runs that share the server apart.
    const std::string bot = "journal-" + std::to_string(::getpid());
    sluice::updates::SqlOffsetStore store(database, bot + "-a");
    sluice::updates::SqlOffsetStore other(database, bot + "-b");
    co_await store.create_tables();
    co_await sluice_test::check_journal_contract(store, other);
    co_await database.execute("DELETE FROM sluice_update_journal WHERE bot_id = $1", bot + "-a");
    co_await database.execute("DELETE FROM sluice_update_offset WHERE bot_id = $1", bot + "-a");
    co_await database.close();
  });
}

}  // namespace
