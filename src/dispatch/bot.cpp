#include <sluice/dispatch/bot.hpp>

#include <charconv>
#include <exception>
#include <stdexcept>
#include <utility>

#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sluice/db/errors.hpp>
#include <sluice/db/url.hpp>
#include <sluice/http/server.hpp>
#include <sluice/runtime/logging.hpp>
#include <sluice/telegram/token.hpp>

namespace sluice::dispatch {

namespace {

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& exception) {
    return exception.what();
  } catch (...) {
    return "unknown exception";
  }
}


}  // namespace

Bot::Bot(boost::asio::any_io_executor executor, BotOptions options, const Router& router)
    : executor_(executor),
      options_(std::move(options)),
      router_(router),
      api_(executor, options_.api),
      environment_{.api = &api_, .tasks = &tasks_, .services = &services_, .username = options_.username},
      tasks_(executor, "bot"),
      dispatcher_(executor,
                  DispatcherOptions{.max_concurrent_updates = options_.max_concurrent_updates,
                                    .max_pending_updates = options_.max_pending_updates},
                  [this](const telegram::Update& update) { return handle_update(update); }) {
  const std::optional<std::int64_t> bot_id = telegram::bot_id_of(options_.api.token);
  if (options_.offset_store == nullptr && !options_.offset_database.empty()) {
    try {
      db::DatabaseUrl::parse(options_.offset_database);
    } catch (const db::UrlError& error) {
      throw std::invalid_argument(fmt::format("BotOptions::offset_database: {}", error.what()));
    }
    if (!bot_id) {
      throw std::invalid_argument(
          "BotOptions::offset_database keys the offset by the bot id, but api.token does not start with "
          "a bot id (a positive number, then ':') as Telegram's tokens do; set offset_store, or an empty "
          "offset_database to keep the offset in memory");
    }
  }
  if (options_.polling.journal && options_.offset_store == nullptr && options_.offset_database.empty()) {
    throw std::invalid_argument(
        "BotOptions::polling.journal needs the offset store in a database (offset_store or "
        "offset_database): a journal in memory is lost in a crash, together with updates Telegram "
        "counts as delivered");
  }
  if (options_.fsm_storage == nullptr) {
    return;
  }
  if (!bot_id) {
    throw std::invalid_argument(
        "BotOptions::fsm_storage needs the bot id for conversation keys, but api.token does not start "
        "with a bot id (a positive number, then ':') as Telegram's tokens do");
  }
  environment_.fsm_storage = options_.fsm_storage;
  environment_.bot_id = *bot_id;
}

Bot::~Bot() = default;

boost::asio::awaitable<void> Bot::handle_update(const telegram::Update& update) {
  Context context(update, environment_);
  std::optional<fsm::Conversation> conversation;
  fsm::KeyLock lock;
  std::exception_ptr error;
  try {
    if (options_.fsm_storage != nullptr) {
      lock = co_await open_conversation(context, conversation);
    }
    co_await router_.route(context);
  } catch (...) {
    error = std::current_exception();
  }
  const auto state = co_await boost::asio::this_coro::cancellation_state;
  const bool cancelled = state.cancelled() != boost::asio::cancellation_type::none;
  // A cancelled handler leaves the release to the lock's destructor, which
  // does not wait.
  if (lock && !cancelled) {
    try {
      co_await lock.release();
    } catch (const std::exception& release_error) {
      runtime::module_logger("sluice.dispatch")
          ->warn("fsm lock release failed update_id={} key={} error={}", update.update_id,
                 conversation ? conversation->key().to_string() : std::string(), release_error.what());
    }
  }
  if (!error) {
    co_return;
  }
  if (cancelled) {
    std::rethrow_exception(error);
  }
  try {
    std::rethrow_exception(error);
  } catch (...) {
    std::throw_with_nested(HandlerError(update.update_id, context.handler_name(), describe(error)));
  }
}

boost::asio::awaitable<fsm::KeyLock> Bot::open_conversation(Context& context,
                                                            std::optional<fsm::Conversation>& conversation) {
  fsm::Storage& storage = *options_.fsm_storage;
  const telegram::Message* message = context.message();
  if (message != nullptr && message->migrate_to_chat_id) {
    const std::size_t moved =
        co_await storage.move_chat(environment_.bot_id, message->chat.id, *message->migrate_to_chat_id);
    runtime::module_logger("sluice.dispatch")
        ->info("fsm chat migrated old_chat_id={} new_chat_id={} records={}", message->chat.id,
               *message->migrate_to_chat_id, moved);
  }

  std::optional<std::int64_t> user_id;
  if (const telegram::User* user = context.from()) {
    user_id = user->id;
  }
  std::optional<std::int64_t> thread_id;
  if (message != nullptr && message->is_topic_message.value_or(false)) {
    thread_id = message->message_thread_id;
  }
  const std::optional<fsm::StorageKey> key =
      fsm::make_key(options_.fsm_key_strategy, environment_.bot_id, context.chat_id(), user_id, thread_id);
  if (!key) {
    co_return fsm::KeyLock();
  }

  fsm::KeyLock lock = co_await storage.lock(*key);
  std::optional<fsm::StateRecord> record = co_await storage.get(*key);
  conversation.emplace(storage, *key, std::move(record), options_.fsm_state_ttl);
  context.set_conversation(&*conversation);
  co_return lock;
}

boost::asio::awaitable<void> Bot::run_polling() {
  if (started_) {
    throw std::logic_error("Bot::run_polling called twice; a Bot runs once");
  }
  started_ = true;
  auto logger = runtime::module_logger("sluice.dispatch");

  updates::OffsetStore& store = offset_store();
  co_await start(options_.polling.delete_webhook);
  updates::LongPollingOptions polling = options_.polling;
  if (!polling.allowed_updates) {
    std::vector<std::string> kinds = router_.allowed_updates();
    if (!kinds.empty()) {
      polling.allowed_updates = std::move(kinds);
    }
  }

  updates::LongPoller poller(api_, dispatcher_, store, std::move(polling));
  poller_ = &poller;
  if (stop_requested_) {
    poller.stop();
  }
  logger->info("bot started username={} max_concurrent_updates={} max_pending_updates={}",
               environment_.username, options_.max_concurrent_updates, options_.max_pending_updates);

  std::exception_ptr error;
  try {
    co_await poller.run();
  } catch (...) {
    error = std::current_exception();
  }

  // Shutdown runs to the end even when run_polling itself was cancelled.
  co_await boost::asio::this_coro::reset_cancellation_state();
  const auto stats_before = dispatcher_.stats();
  co_await dispatcher_.close(options_.shutdown_grace);
  std::exception_ptr finish_error;
  try {
    co_await poller.finish(!error);
  } catch (...) {
    finish_error = std::current_exception();
  }
  co_await tasks_.close(options_.shutdown_grace);
  co_await close_offset_store();
  poller_ = nullptr;
  logger->info("bot stopped handled={} failed={} pending_at_stop={}", dispatcher_.stats().handled_total,
               dispatcher_.stats().failed_total, stats_before.pending);

  if (error) {
    std::rethrow_exception(error);
  }
  if (finish_error) {
    std::rethrow_exception(finish_error);
  }
}

boost::asio::awaitable<void> Bot::learn_username() {
  if (!environment_.username.empty()) {
    co_return;
  }
  telegram::GetMe get_me{};
  telegram::User me = co_await api_.get_me(std::move(get_me));
  environment_.username = me.username.value_or("");
}

boost::asio::awaitable<void> Bot::run_webhook(WebhookServerOptions options) {
  if (started_) {
    throw std::logic_error("Bot::run_webhook called on a Bot that already ran; a Bot runs once");
  }
  started_ = true;
  auto logger = runtime::module_logger("sluice.dispatch");
  // The handler checks its options, so a bad secret fails before any call.
  updates::OffsetStore& store = offset_store();
  updates::WebhookHandler handler(executor_, dispatcher_, options.webhook, &store);
  co_await start(false);
  options.server.body_limit = options.webhook.body_limit;
  http::Server server(executor_, options.server,
                      [&handler](http::Request&& request, const http::RequestInfo& info) {
                        return handler.handle(std::move(request), info);
                      });
  server.listen();
  webhook_server_ = &server;
  webhook_ = &handler;
  environment_.webhook = &handler;
  webhook_port_ = server.port();
  if (stop_requested_) {
    server.stop(options_.shutdown_grace);
  }

  std::exception_ptr error;
  try {
    if (!options.public_url.empty()) {
      co_await updates::set_webhook(api_, options.public_url, options.webhook.secret_token,
                                    router_.allowed_updates(), options.max_connections);
    }
    logger->info("bot started webhook_port={} username={} max_concurrent_updates={}", webhook_port_,
                 environment_.username, options_.max_concurrent_updates);
    co_await server.run();
  } catch (...) {
    error = std::current_exception();
  }

  co_await boost::asio::this_coro::reset_cancellation_state();
  handler.close();
  if (error) {
    // The server closes its connections when destroyed at the end of scope.
    server.stop(std::chrono::milliseconds(0));
  }
  co_await dispatcher_.close(options_.shutdown_grace);
  co_await tasks_.close(options_.shutdown_grace);
  co_await close_offset_store();
  webhook_server_ = nullptr;
  webhook_ = nullptr;
  environment_.webhook = nullptr;
  webhook_port_ = 0;
  logger->info("bot stopped handled={} failed={}", dispatcher_.stats().handled_total,
               dispatcher_.stats().failed_total);
  if (error) {
    std::rethrow_exception(error);
  }
}

updates::OffsetStore& Bot::offset_store() {
  if (options_.offset_store != nullptr) {
    return *options_.offset_store;
  }
  if (options_.offset_database.empty()) {
    return memory_store_;
  }
  db::DatabaseOptions database_options;
  if (db::DatabaseUrl::parse(options_.offset_database).backend == db::Backend::sqlite) {
    // One thread for the statements and one for WAL checkpoints, which
    // then never hold up a stored batch.
    offset_blocking_.emplace(2, "offsets");
    database_options.sqlite.blocking_pool = &*offset_blocking_;
  }
  offset_db_.emplace(executor_, options_.offset_database, database_options);
  sql_offset_store_.emplace(*offset_db_, std::to_string(telegram::bot_id_of(options_.api.token).value_or(0)));
  return *sql_offset_store_;
}

boost::asio::awaitable<void> Bot::start(bool delete_webhook) {
  auto logger = runtime::module_logger("sluice.dispatch");
  std::exception_ptr error;
  try {
    // getMe first, so that a wrong token creates no database file.
    co_await learn_username();
    if (sql_offset_store_) {
      co_await open_offset_tables();
      logger->info("offsets kept in {}", offset_db_->url());
    }
    if (delete_webhook) {
      co_await updates::delete_webhook(api_, false);
      logger->info("webhook deleted before polling");
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    co_await close_offset_store();
    std::rethrow_exception(error);
  }
}

boost::asio::awaitable<void> Bot::open_offset_tables() {
  std::string failure;
  try {
    co_await sql_offset_store_->create_tables();
  } catch (const boost::system::system_error& error) {
    if (error.code() == boost::asio::error::operation_aborted) {
      throw;
    }
    failure = error.what();
  } catch (const std::exception& error) {
    failure = error.what();
  }
  if (!failure.empty()) {
    throw std::runtime_error(fmt::format(
        "cannot open the offset database {}: {}; check that its directory exists and is writable, or set "
        "BotOptions::offset_database",
        offset_db_->url(), failure));
  }
}

boost::asio::awaitable<void> Bot::close_offset_store() {
  if (offset_db_) {
    co_await offset_db_->close();
  }
}

void Bot::stop() {
  stop_requested_ = true;
  if (poller_ != nullptr) {
    poller_->stop();
  }
  if (webhook_server_ != nullptr) {
    webhook_server_->stop(options_.shutdown_grace);
  }
}

}  // namespace sluice::dispatch
