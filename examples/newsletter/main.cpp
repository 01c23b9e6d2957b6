// newsletter: the reference bot of sluice. Users /start, /subscribe and
// /unsubscribe (also with an inline button); admins /broadcast a text to
// every subscriber. Run with --help for the options.
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

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
      if (first + used != entry.find_last_not_of(' ') + 1) {
        throw std::invalid_argument(entry);
      }
      admins.insert(id);
    } catch (const std::exception&) {
      throw po::error("invalid user id '" + entry + "' in --admins; expected numbers separated by commas");
    }
  }
  return admins;
}

std::string from_environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

int main(int argc, char** argv) {
  newsletter::Config config;
  config.migrations = NEWSLETTER_MIGRATIONS_DIR;
  std::string admins = from_environment("NEWSLETTER_ADMINS");
  std::string log_level = "info";
  unsigned progress_seconds = static_cast<unsigned>(config.progress_interval.count());
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
      ("global-rate", po::value(&config.global_rate)->default_value(config.global_rate),
       "messages per second over all chats, without paid broadcast (Telegram allows about 30)")
      ("broadcast-concurrency", po::value(&config.broadcast_concurrency)->default_value(config.broadcast_concurrency),
       "broadcast sends in flight at once (requests)")
      ("progress-interval", po::value(&progress_seconds)->default_value(progress_seconds),
       "seconds between two progress edits of the admin's broadcast message")
      ("max-concurrent-updates", po::value(&config.max_concurrent_updates)->default_value(config.max_concurrent_updates),
       "updates handled at once over all chats (handlers)")
      ("blocking-threads", po::value(&config.blocking_threads)->default_value(config.blocking_threads),
       "threads for SQLite calls")
      ("webhook-port", po::value(&config.webhook_port)->default_value(config.webhook_port),
       "receive updates by webhook on this TCP port instead of long polling (0: long polling)")
      ("webhook-address", po::value(&config.webhook_address)->default_value(config.webhook_address),
       "address the webhook server listens on")
      ("webhook-url", po::value(&config.webhook_url),
       "public HTTPS URL that Telegram posts updates to; the bot registers it with setWebhook "
       "(empty: keep the webhook already set)")
      ("webhook-secret", po::value(&config.webhook_secret),
       "secret token Telegram sends with each webhook request, 1-256 characters of A-Z, a-z, 0-9, _ and - "
       "(default: $WEBHOOK_SECRET)")
      ("log-level", po::value(&log_level)->default_value(log_level),
       "trace, debug, info, warn, error or off");

  try {
    po::variables_map values;
    po::store(po::parse_command_line(argc, argv, description), values);
    if (values.count("help") != 0) {
      std::cout << description << "\n";
      return 0;
    }
    po::notify(values);
    config.admins = parse_admins(admins);
    if (config.token.empty()) {
      throw po::error("missing bot token: pass --token or set BOT_TOKEN");
    }
    if (config.webhook_port != 0 && config.webhook_secret.empty()) {
      throw po::error("webhook mode needs a secret token: pass --webhook-secret or set WEBHOOK_SECRET");
    }
    if (progress_seconds == 0) {
      throw po::error("--progress-interval must be at least 1 second");
    }
    if (config.global_rate == 0 || config.broadcast_concurrency == 0 || config.max_concurrent_updates == 0 ||
        config.blocking_threads == 0) {
      throw po::error("--global-rate, --broadcast-concurrency, --max-concurrent-updates and "
                      "--blocking-threads must be at least 1");
    }
    config.progress_interval = std::chrono::seconds(progress_seconds);
  } catch (const po::error& error) {
    std::cerr << "newsletter: " << error.what() << "\nRun newsletter --help for the options.\n";
    return 2;
  }

  spdlog::set_level(spdlog::level::from_str(log_level));
  return newsletter::run(config);
}
