#pragma once
// The reference newsletter bot: users subscribe, admins broadcast.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <cstddef>
#include <set>
#include <string>

namespace newsletter {

/// Settings from the command line and the environment (see main.cpp).
struct Config {
  /// Bot token; never logged.
  std::string token{};
  std::string api_url = "https://api.telegram.org";
  /// Database URL: sqlite:///path.db or postgresql://...
  std::string database_url = "sqlite:///newsletter.db";
  /// Redis URL; empty runs without Redis.
  std::string redis_url{};
  /// User ids allowed to /broadcast.
  std::set<std::int64_t> admins{};
  std::filesystem::path migrations{};
  /// Send broadcasts with allow_paid_broadcast (1000 messages/s).
  bool paid_broadcast = false;
  /// Messages per second over all chats that the Bot API client allows
  /// (Telegram's bulk limit is 30).
  std::uint32_t global_rate = 30;
  /// Sends of a broadcast in flight at once.
  std::size_t broadcast_concurrency = 64;
  /// Time between two progress edits of the admin's status message.
  std::chrono::seconds progress_interval{5};
  /// Handlers running at once over all chats.
  std::size_t max_concurrent_updates = 256;
  /// Worker threads for SQLite calls: the writer, 4 readers and WAL
  /// checkpoints.
  std::size_t blocking_threads = 6;
  /// Webhook mode when the port is set: listen on this address and port
  /// instead of long polling.
  std::string webhook_address = "127.0.0.1";
  std::uint16_t webhook_port = 0;
  /// The public URL Telegram posts to; empty leaves the webhook as it is.
  std::string webhook_url{};
  /// Secret token that Telegram sends with each webhook request.
  std::string webhook_secret{};
};

/// Runs the bot until SIGINT or SIGTERM. Returns the process exit status.
int run(const Config& config);

}  // namespace newsletter
