// newsletter: the reference bot of sluice. Users /start, /subscribe and
// /unsubscribe (also with an inline button); admins /broadcast a text to
// every subscriber. Run with --help for the options.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sluice/db/errors.hpp>
#include <sluice/db/sqlite.hpp>
#include <sluice/db/url.hpp>
#include <sluice/redis/error.hpp>
#include <sluice/redis/url.hpp>
#include <sluice/runtime/flags.hpp>
#include <sluice/runtime/logging.hpp>
#include <sluice/telegram/bot_api.hpp>
#include <sluice/telegram/token.hpp>

#include "newsletter.hpp"

namespace {

namespace po = boost::program_options;

// Parses "1,2, 3" into user ids; throws po::error naming the bad entry.
std::set<std::int64_t> parse_admins(const std::string& list) {
  std::set<std::int64_t> admins;
  std::stringstream stream(list);
  std::string entry;
  while (std::getline(stream, entry, ',')) {
    const auto first = entry.find_first_not_of(' ');
    if (first == std::string::npos) {
      continue;
    }
    try {
      std::size_t used = 0;
      const std::int64_t id = std::stoll(entry.substr(first), &used);
      if (first + used != entry.find_last_not_of(' ') + 1 || id <= 0) {
        throw std::invalid_argument(entry);
      }
      admins.insert(id);
    } catch (const std::exception&) {
      throw po::error("invalid user id '" + entry + "' in --admins; expected positive numbers separated by commas");
    }
  }
  return admins;
}

std::string from_environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// Checks the token and the URLs, so that a malformed one is a usage error
// before anything starts. Throws po::error naming the flag. The query
// parameters of a PostgreSQL URL are checked when the driver connects.
void check_token_and_urls(const newsletter::Config& config) {
  if (const auto problem = sluice::telegram::check_token(config.token)) {
    throw po::error(fmt::format("invalid token: {}; check --token or BOT_TOKEN", *problem));
  }
  if (const auto problem = sluice::telegram::check_base_url(config.api_url)) {
    throw po::error(fmt::format("invalid value '{}' for --api-url (or SLUICE_API_URL): {}", config.api_url, *problem));
  }
  try {
    sluice::db::DatabaseUrl url = sluice::db::DatabaseUrl::parse(config.database_url);
    if (url.backend == sluice::db::Backend::sqlite) {
      sluice::db::sqlite_options_from_url(url, {});
    }
  } catch (const sluice::db::UrlError& error) {
    throw po::error(fmt::format("--db: {}", error.what()));
  }
  if (config.redis_url.empty()) {
    return;
  }
  try {
    sluice::redis::parse_url(config.redis_url);
  } catch (const sluice::redis::Error& error) {
    throw po::error(fmt::format("--redis: {}", error.what()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  newsletter::Config config;
  config.migrations = NEWSLETTER_MIGRATIONS_DIR;
  std::string admins = from_environment("NEWSLETTER_ADMINS");
  std::string log_level = "info";
  std::string global_rate = std::to_string(config.global_rate);
  std::string broadcast_concurrency = std::to_string(config.broadcast_concurrency);
  std::string progress_seconds = std::to_string(config.progress_interval.count());
  std::string max_concurrent_updates = std::to_string(config.max_concurrent_updates);
  std::string blocking_threads = std::to_string(config.blocking_threads);
  std::string webhook_port = std::to_string(config.webhook_port);
  if (std::string token = from_environment("BOT_TOKEN"); !token.empty()) {
    config.token = token;
  }
  if (std::string url = from_environment("SLUICE_API_URL"); !url.empty()) {
    config.api_url = url;
  }
  if (std::string url = from_environment("DATABASE_URL"); !url.empty()) {
    config.database_url = url;
  }
  config.redis_url = from_environment("REDIS_URL");
  config.webhook_secret = from_environment("WEBHOOK_SECRET");

  po::options_description description("newsletter: a Telegram newsletter bot built on sluice\n\nOptions");
  description.add_options()
      ("help,h", "print this help and exit")
      ("token", po::value(&config.token),
       "bot token from @BotFather (default: $BOT_TOKEN); never logged")
      ("api-url", po::value(&config.api_url)->default_value(config.api_url),
       "Bot API server, e.g. a sluice-sandbox URL (default: $SLUICE_API_URL if set)")
      ("db", po::value(&config.database_url)->default_value(config.database_url),
       "database URL: sqlite:///relative.db, sqlite:////absolute.db or postgresql://user@host/db "
       "(default: $DATABASE_URL if set)")
      ("redis", po::value(&config.redis_url),
       "Redis URL redis://host:port/db; lets several bot processes share the broadcast lock "
       "(default: $REDIS_URL; empty: no Redis)")
      ("admins", po::value(&admins),
       "user ids allowed to /broadcast, separated by commas (default: $NEWSLETTER_ADMINS)")
      ("migrations", po::value(&config.migrations)->default_value(config.migrations),
       "folder of the schema migrations (NNNN_name.sql)")
      ("paid-broadcast", po::bool_switch(&config.paid_broadcast),
       "send broadcasts with allow_paid_broadcast: up to 1000 messages/s, charged in Telegram Stars")
      ("global-rate", po::value(&global_rate)->default_value(global_rate),
       "messages per second over all chats, without paid broadcast, 1-1000 (Telegram allows about 30)")
      ("broadcast-concurrency", po::value(&broadcast_concurrency)->default_value(broadcast_concurrency),
       "broadcast sends in flight at once (requests), 1-1000")
      ("progress-interval", po::value(&progress_seconds)->default_value(progress_seconds),
       "seconds between two progress edits of the admin's broadcast message, 1-3600")
      ("max-concurrent-updates", po::value(&max_concurrent_updates)->default_value(max_concurrent_updates),
       "updates handled at once over all chats (handlers), 1-1024")
      ("blocking-threads", po::value(&blocking_threads)->default_value(blocking_threads),
       "threads for SQLite calls, 1-64")
      ("webhook-port", po::value(&webhook_port)->default_value(webhook_port),
       "receive updates by webhook on this TCP port instead of long polling, 0-65535 (0: long polling)")
      ("webhook-address", po::value(&config.webhook_address)->default_value(config.webhook_address),
       "address the webhook server listens on")
      ("webhook-url", po::value(&config.webhook_url),
       "public HTTPS URL that Telegram posts updates to; the bot registers it with setWebhook "
       "(empty: keep the webhook already set)")
      ("webhook-secret", po::value(&config.webhook_secret),
       "secret token Telegram sends with each webhook request, 1-256 characters of A-Z, a-z, 0-9, _ and - "
       "(default: $WEBHOOK_SECRET)")
      ("log-level", po::value(&log_level)->default_value(log_level),
       "trace, debug, info, warn, error, critical or off");

  try {
    po::variables_map values;
    po::store(po::parse_command_line(argc, argv, description), values);
    if (values.count("help") != 0) {
      std::cout << description << "\n";
      return 0;
    }
    po::notify(values);
    config.admins = parse_admins(admins);
    if (values.count("admins") != 0 && config.admins.empty()) {
      throw po::error("--admins needs at least one user id; leave it out for a bot without admins");
    }
    if (config.token.empty()) {
      throw po::error("missing bot token: pass --token or set BOT_TOKEN");
    }
    // 1000 messages/s is Telegram's highest rate (paid broadcast). More than
    // 1024 handlers cannot run, because the bot keeps at most 1024 updates
    // pending (BotOptions::max_pending_updates). The other upper limits are
    // sanity bounds that catch typos.
    config.global_rate = sluice::runtime::parse_integer_flag<std::uint32_t>("global-rate", global_rate, 1, 1000);
    config.broadcast_concurrency = sluice::runtime::parse_integer_flag<std::size_t>("broadcast-concurrency", broadcast_concurrency, 1, 1000);
    config.progress_interval =
        std::chrono::seconds(sluice::runtime::parse_integer_flag<std::int64_t>("progress-interval", progress_seconds, 1, 3600));
    config.max_concurrent_updates =
        sluice::runtime::parse_integer_flag<std::size_t>("max-concurrent-updates", max_concurrent_updates, 1, 1024);
    config.blocking_threads = sluice::runtime::parse_integer_flag<std::size_t>("blocking-threads", blocking_threads, 1, 64);
    config.webhook_port = sluice::runtime::parse_integer_flag<std::uint16_t>("webhook-port", webhook_port, 0,
                                                       std::numeric_limits<std::uint16_t>::max());
    if (config.webhook_port != 0 && config.webhook_secret.empty()) {
      throw po::error("webhook mode needs a secret token: pass --webhook-secret or set WEBHOOK_SECRET");
    }
    const auto level = sluice::runtime::parse_log_level(log_level);
    if (!level) {
      throw po::error(fmt::format("invalid value '{}' for --log-level: expected one of {}", log_level,
                                  sluice::runtime::kLogLevelNames));
    }
    spdlog::set_level(*level);
    check_token_and_urls(config);
  } catch (const std::exception& error) {
    // Both po::error and the std::invalid_argument of parse_integer_flag.
    std::cerr << "newsletter: " << error.what() << "\nRun newsletter --help for the options.\n";
    return 2;
  }

  return newsletter::run(config);
}
