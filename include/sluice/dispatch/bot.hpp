#pragma once

// Bot: a Router, a Dispatcher and an update source put together.
//
//   sluice::dispatch::Router router;
//   router.on_command("start", [](sluice::dispatch::Context& ctx) -> boost::asio::awaitable<void> {
//     co_await ctx.reply("hi");
//   });
//   sluice::dispatch::Bot bot(io.get_executor(), {.api = {.token = token}}, router);
//   co_await bot.run_polling();   // until bot.stop() or cancellation

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <sluice/db/database.hpp>
#include <sluice/dispatch/context.hpp>
#include <sluice/dispatch/dispatcher.hpp>
#include <sluice/dispatch/filter.hpp>
#include <sluice/dispatch/router.hpp>
#include <sluice/fsm/conversation.hpp>
#include <sluice/fsm/storage.hpp>
#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/telegram/bot_api.hpp>
#include <sluice/telegram/update.hpp>
#include <sluice/updates/long_polling.hpp>
#include <sluice/updates/offset.hpp>
#include <sluice/updates/webhook.hpp>

namespace sluice::dispatch {

struct BotOptions {
  /// The Bot API client's settings; `api.token` is required.
  telegram::BotApiOptions api{};
  /// Handlers running at once over all chats. Default 256.
  std::size_t max_concurrent_updates = 256;
  /// Updates taken and not yet handled; fetching pauses at this number.
  /// Must be at least max_concurrent_updates. Default 1024.
  std::size_t max_pending_updates = 1024;
  /// Long polling settings. An empty `allowed_updates` is filled from the
  /// router.
  updates::LongPollingOptions polling{};
  /// The store of the confirmed offset, the dead letters and the journal,
  /// or nullptr to use offset_database. It must outlive the Bot.
  updates::OffsetStore* offset_store = nullptr;
  /// The database of the offset store when offset_store is nullptr: a URL
  /// as db::Database takes it, by default an SQLite file in the working
  /// directory, created when the bot starts. Rows are keyed by the bot id
  /// (the token's digits before ':'), so bots may share the file. Empty
  /// keeps the offset in memory: a restarted bot then receives again what
  /// Telegram did not get confirmed, which tests against a fresh sandbox
  /// want.
  std::string offset_database = "sqlite:///sluice-updates.db";
  /// The bot's username without "@", for commands such as "/start@name";
  /// empty calls getMe when the bot starts.
  std::string username{};
  /// At shutdown, how long running handlers and spawned tasks may finish
  /// before they are cancelled. Default 10 s.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(10);
  /// The storage of conversation states (Context::state,
  /// filters::in_state); nullptr keeps none. With a storage, the bot takes the lock of each
  /// update's conversation before routing and holds it until the handler
  /// returns. Must outlive the Bot; `api.token` must then start with the
  /// bot's id, as Telegram's tokens do.
  fsm::Storage* fsm_storage = nullptr;
  /// The parts of a conversation key. Default: per chat and user.
  fsm::KeyStrategy fsm_key_strategy = fsm::KeyStrategy::chat_and_user;
  /// Time to live of conversation writes that give none; nullopt keeps
  /// them until cleared. Each write restarts it.
  std::optional<std::chrono::milliseconds> fsm_state_ttl{};
};

/// Settings of the webhook server of Bot::run_webhook.
struct WebhookServerOptions {
  /// Secret token, path and limits; `webhook.secret_token` is required.
  updates::WebhookOptions webhook{};
  /// Address and port to listen on, timeouts and TLS. Its body_limit is
  /// replaced by webhook.body_limit.
  http::ServerOptions server{};
  /// The public HTTPS URL Telegram posts to. When set, run_webhook calls
  /// setWebhook with it, the secret token and the router's update kinds;
  /// when empty the webhook is assumed to be set already.
  std::string public_url{};
  /// Requests at once Telegram may make to the webhook, 1 to 100, passed
  /// to setWebhook with public_url; std::nullopt keeps Telegram's default
  /// (40).
  std::optional<std::int64_t> max_connections{};
};

/// A Telegram bot: fetches updates, routes each to a handler with per-chat
/// ordering and bounded concurrency (see Dispatcher), and confirms them
/// once handled (see updates::LongPoller).
///
/// A handler that throws is logged with update_id and handler name by the
/// logger "sluice.dispatch"; the update counts as handled and the bot goes
/// on.
///
/// Executor and threads: everything runs on `executor`, which must belong
/// to a single-threaded io_context; not thread-safe. Lifetime: the router
/// and the services must outlive the Bot; destroy the Bot before the
/// io_context.
class Bot {
 public:
  /// Throws std::invalid_argument for invalid options (see BotApi and
  /// Dispatcher), for a malformed offset_database, for a token without the
  /// bot id when fsm_storage or offset_database is used, and for
  /// polling.journal with the offset kept in memory.
  Bot(boost::asio::any_io_executor executor, BotOptions options, const Router& router);
  ~Bot();
  Bot(const Bot&) = delete;
  Bot& operator=(const Bot&) = delete;

  /// Runs the bot by long polling until `stop()` or cancellation, then
  /// shuts down in stages: stops fetching, waits up to shutdown_grace for
  /// running handlers, cancels the rest, confirms the offset of what was
  /// handled, and closes the tasks handlers spawned. Call once.
  ///
  /// Cancellation: terminal cancellation acts as `stop()`; the shutdown
  /// stages still run. Errors: updates::PollingStopped for 401 and 409
  /// (after the shutdown stages), and errors of the offset store.
  boost::asio::awaitable<void> run_polling();

  /// Runs the bot as a webhook server until `stop()` or cancellation: an
  /// http::Server with an updates::WebhookHandler in front of the
  /// dispatcher, so each request gets 200 once its update is handled. On
  /// stop it stops accepting, lets requests in progress finish for
  /// shutdown_grace, then drains the dispatcher and the spawned tasks as
  /// run_polling does. Call once, instead of run_polling.
  ///
  /// Errors: boost::system::system_error when the address cannot be bound;
  /// the BotApi's errors from setWebhook.
  boost::asio::awaitable<void> run_webhook(WebhookServerOptions options);

  /// The port the webhook server listens on while run_webhook runs, else 0.
  std::uint16_t webhook_port() const noexcept { return webhook_port_; }

  /// The webhook handler while run_webhook runs, else nullptr.
  const updates::WebhookHandler* webhook() const noexcept { return webhook_; }

  /// Asks `run_polling` or `run_webhook` to return. Idempotent; call on the
  /// event loop.
  void stop();

  /// Registers `service` for `Context::service<T>()`. Call before the bot
  /// starts; `service` must outlive the Bot.
  template <class T>
  Bot& provide(T& service) {
    services_.add(service);
    return *this;
  }

  /// Routes one update as the dispatcher does, in the caller's coroutine,
  /// without ordering or limits, and logs what escapes the handler. For
  /// update sources other than long polling.
  boost::asio::awaitable<void> handle_update(const telegram::Update& update);

  telegram::BotApi& api() noexcept { return api_; }
  /// The tasks started by Context::spawn.
  runtime::TaskSet& tasks() noexcept { return tasks_; }
  Dispatcher& dispatcher() noexcept { return dispatcher_; }
  /// The long poller while run_polling runs, else nullptr.
  const updates::LongPoller* poller() const noexcept { return poller_; }
  const std::string& username() const noexcept { return environment_.username; }

 private:
  boost::asio::awaitable<void> learn_username();
  // The offset store of this run: options_.offset_store, the store on
  // options_.offset_database (made here, its tables by start) or the
  // memory store.
  updates::OffsetStore& offset_store();
  // Learns the username, creates the offset tables and deletes the webhook
  // if requested. If one of them fails, it closes the offset database.
  boost::asio::awaitable<void> start(bool delete_webhook);
  // Creates the offset tables. Its error names the database.
  boost::asio::awaitable<void> open_offset_tables();
  boost::asio::awaitable<void> close_offset_store();
  // Moves the state of a migrated chat, then takes the lock of the update's
  // conversation and reads its record into `conversation`.
  boost::asio::awaitable<fsm::KeyLock> open_conversation(Context& context,
                                                         std::optional<fsm::Conversation>& conversation);

  boost::asio::any_io_executor executor_;
  BotOptions options_;
  const Router& router_;
  ServiceRegistry services_;
  telegram::BotApi api_;
  BotEnvironment environment_;
  updates::MemoryOffsetStore memory_store_;
  // The default offset store: SQLite runs its calls on the blocking pool.
  std::optional<runtime::BlockingPool> offset_blocking_;
  std::optional<db::Database> offset_db_;
  std::optional<updates::SqlOffsetStore> sql_offset_store_;
  updates::LongPoller* poller_ = nullptr;
  http::Server* webhook_server_ = nullptr;
  updates::WebhookHandler* webhook_ = nullptr;
  std::uint16_t webhook_port_ = 0;
  bool stop_requested_ = false;
  bool started_ = false;
  runtime::TaskSet tasks_;
  // Declared last so that it is destroyed first: its tasks use the members
  // above.
  Dispatcher dispatcher_;
};

}  // namespace sluice::dispatch
