// The newsletter bot: subscriber storage, command and button handlers, and
// the broadcast task.
#include "newsletter.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sluice/broadcast/broadcast.hpp>
#include <sluice/db/database.hpp>
#include <sluice/db/migrate.hpp>
#include <sluice/dispatch/bot.hpp>
#include <sluice/redis/client.hpp>
#include <sluice/runtime/blocking_pool.hpp>
#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/shutdown.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/telegram/keyboards.hpp>
#include <sluice/telegram/types.hpp>
#include <sluice/updates/offset.hpp>

namespace newsletter {

namespace {

namespace asio = boost::asio;
namespace tg = sluice::telegram;
using sluice::dispatch::Context;

// Recipients of a broadcast, read page by page in chat_id order; the
// partial index subscribers_recipients covers both queries.
constexpr const char* kRecipientsPage =
    "SELECT chat_id FROM subscribers WHERE subscribed = 1 AND active = 1 AND chat_id > $1 "
    "ORDER BY chat_id LIMIT $2";
constexpr const char* kRecipientsCount = "SELECT COUNT(*) FROM subscribers WHERE subscribed = 1 AND active = 1";
// The Redis key that lets one bot process broadcast at a time. Its time to
// live frees it when the holder crashes.
constexpr std::string_view kBroadcastLockKey = "newsletter:broadcast:lock";
constexpr auto kBroadcastLockTtl = std::chrono::minutes(30);
// How long running broadcasts may go on after a stop signal before they are
// cancelled; a cancelled broadcast resumes at the next start.
constexpr auto kBroadcastShutdownGrace = std::chrono::seconds(5);

std::shared_ptr<spdlog::logger> logger() {
  static const std::shared_ptr<spdlog::logger> instance = sluice::runtime::module_logger("newsletter");
  return instance;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

tg::InlineKeyboardMarkup toggle_keyboard(bool subscribed) {
  tg::InlineKeyboardBuilder builder;
  if (subscribed) {
    builder.callback("Unsubscribe", "sub:off");
  } else {
    builder.callback("Subscribe", "sub:on");
  }
  return builder.build();
}

std::string subscription_text(bool subscribed) {
  return subscribed ? "You are subscribed to the newsletter. /unsubscribe stops it."
                    : "You are not subscribed. /subscribe starts the newsletter.";
}

std::string progress_text(const std::string& id, const sluice::broadcast::Progress& progress) {
  std::string pending = progress.pending ? std::to_string(*progress.pending) : std::string("?");
  return fmt::format("Broadcast {}: {} delivered, {} blocked, {} failed, {} pending, {:.0f} messages/s.", id,
                     progress.delivered, progress.blocked, progress.failed, pending, progress.rate);
}

std::optional<std::int64_t> callback_message_id(const tg::CallbackQuery& query) {
  if (!query.message) {
    return std::nullopt;
  }
  const auto& message = static_cast<const tg::MaybeInaccessibleMessage::Variant&>(*query.message);
  if (const auto* accessible = std::get_if<tg::Message>(&message)) {
    return accessible->message_id;
  }
  return std::get<tg::InaccessibleMessage>(message).message_id;
}

// A broadcast to run or resume.
struct BroadcastJob {
  std::string id;
  std::string text;
  std::int64_t admin_chat_id = 0;
  std::int64_t status_message_id = 0;
};

}  // namespace

// The bot's state that handlers reach through ctx.service<Newsletter>():
// the subscriber table, the settings and the broadcast lock.
class Newsletter {
 public:
  Newsletter(sluice::db::Database& database, const Config& config, sluice::redis::Client* redis)
      : database_(&database), config_(&config), redis_(redis) {}

  sluice::db::Database& database() noexcept { return *database_; }
  const Config& config() const noexcept { return *config_; }
  bool is_admin(std::int64_t user_id) const { return config_->admins.contains(user_id); }

  // Set once the Bot and the task set exist.
  void attach(tg::BotApi& api, sluice::runtime::TaskSet& broadcasts) {
    api_ = &api;
    broadcasts_ = &broadcasts;
  }

  // Inserts the chat or marks it active again, keeping its subscription.
  asio::awaitable<void> register_chat(std::int64_t chat_id, std::string first_name,
                                      std::optional<std::string> username) {
    std::string sql =
        "INSERT INTO subscribers (chat_id, first_name, username, subscribed, active, joined_at) "
        "VALUES ($1, $2, $3, 0, 1, $4) ON CONFLICT (chat_id) DO UPDATE SET first_name = excluded.first_name, "
        "username = excluded.username, active = 1";
    const std::int64_t now = unix_now();
    co_await database_->execute(std::move(sql), chat_id, first_name, username, now);
  }

  // Sets the subscription, registering the chat when it is new.
  asio::awaitable<void> set_subscribed(std::int64_t chat_id, std::string first_name, bool subscribed) {
    std::string sql =
        "INSERT INTO subscribers (chat_id, first_name, subscribed, active, joined_at) VALUES ($1, $2, $3, 1, $4) "
        "ON CONFLICT (chat_id) DO UPDATE SET subscribed = excluded.subscribed, active = 1";
    const std::int64_t flag = subscribed ? 1 : 0;
    const std::int64_t now = unix_now();
    co_await database_->execute(std::move(sql), chat_id, first_name, flag, now);
  }

  // Marks a chat inactive (it blocked the bot) or active again.
  asio::awaitable<void> set_active(std::int64_t chat_id, bool active) {
    std::string sql = "UPDATE subscribers SET active = $2 WHERE chat_id = $1";
    const std::int64_t flag = active ? 1 : 0;
    co_await database_->execute(std::move(sql), chat_id, flag);
  }

  // Moves a group's record to its new supergroup id.
  asio::awaitable<void> move_chat(std::int64_t old_chat_id, std::int64_t new_chat_id) {
    std::string sql = "UPDATE subscribers SET chat_id = $2 WHERE chat_id = $1";
    co_await database_->execute(std::move(sql), old_chat_id, new_chat_id);
  }

  // Returns whether the chat is subscribed (false when unknown).
  asio::awaitable<bool> is_subscribed(std::int64_t chat_id) {
    std::string sql = "SELECT subscribed FROM subscribers WHERE chat_id = $1";
    sluice::db::ResultSet rows = co_await database_->query(std::move(sql), chat_id);
    co_return !rows.empty() && rows[0].get<std::int64_t>(0) == 1;
  }

  asio::awaitable<std::int64_t> recipient_count() {
    std::string sql = kRecipientsCount;
    sluice::db::ResultSet rows = co_await database_->query(std::move(sql));
    co_return rows.at(0).get<std::int64_t>(0);
  }

  // Takes the broadcast lock: in this process always, in Redis too when
  // configured. Returns the id of the broadcast that has it, or nullopt
  // when `id` got it.
  asio::awaitable<std::optional<std::string>> lock_broadcast(std::string id) {
    if (running_broadcast_) {
      co_return running_broadcast_;
    }
    running_broadcast_ = id;
    if (redis_ != nullptr) {
      sluice::redis::SetOptions options{.expire = kBroadcastLockTtl,
                                        .condition = sluice::redis::SetCondition::if_not_exists,
                                        .keep_ttl = false};
      const bool acquired = co_await redis_->set(kBroadcastLockKey, id, options);
      if (!acquired) {
        // A process that crashed while broadcasting `id` left the key with
        // that value: resuming the same broadcast may take it over.
        std::optional<std::string> holder = co_await redis_->get(kBroadcastLockKey);
        if (holder != id) {
          running_broadcast_.reset();
          co_return holder.value_or("(another bot process)");
        }
      }
    }
    co_return std::nullopt;
  }

  // Releases the lock. NOTE: the Redis key is deleted without checking that
  // it still contains `id`, so a broadcast that outlives kBroadcastLockTtl could
  // release another process's lock.
  asio::awaitable<void> unlock_broadcast() {
    running_broadcast_.reset();
    if (redis_ != nullptr) {
      co_await redis_->del(kBroadcastLockKey);
    }
  }

  // Releases the lock of this process only, for a broadcast that stopped
  // early: the Redis key stays until its time to live ends or the
  // broadcast resumes.
  void unlock_broadcast_locally() noexcept { running_broadcast_.reset(); }

  const std::optional<std::string>& running_broadcast() const noexcept { return running_broadcast_; }

  // Records a new broadcast, so that a restart resumes it.
  asio::awaitable<void> insert_broadcast(BroadcastJob job) {
    std::string sql =
        "INSERT INTO broadcasts (id, admin_chat_id, status_message_id, text, started_at) VALUES ($1, $2, $3, $4, $5)";
    const std::int64_t now = unix_now();
    co_await database_->execute(std::move(sql), job.id, job.admin_chat_id, job.status_message_id, job.text, now);
  }

  asio::awaitable<void> finish_broadcast(std::string id, sluice::broadcast::Report report) {
    std::string sql =
        "UPDATE broadcasts SET finished_at = $2, delivered = $3, blocked = $4, failed = $5 WHERE id = $1";
    const std::int64_t now = unix_now();
    const auto delivered = static_cast<std::int64_t>(report.totals.delivered);
    const auto blocked = static_cast<std::int64_t>(report.totals.blocked);
    const auto failed = static_cast<std::int64_t>(report.totals.failed);
    co_await database_->execute(std::move(sql), id, now, delivered, blocked, failed);
  }

  asio::awaitable<std::vector<BroadcastJob>> unfinished_broadcasts() {
    std::string sql =
        "SELECT id, admin_chat_id, status_message_id, text FROM broadcasts WHERE finished_at IS NULL "
        "ORDER BY started_at";
    sluice::db::ResultSet rows = co_await database_->query(std::move(sql));
    std::vector<BroadcastJob> jobs;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      jobs.push_back(BroadcastJob{.id = rows[i].get<std::string>(0),
                                  .text = rows[i].get<std::string>(3),
                                  .admin_chat_id = rows[i].get<std::int64_t>(1),
                                  .status_message_id = rows[i].get<std::int64_t>(2)});
    }
    co_return jobs;
  }

  // Starts `job` as the named task "broadcast:<id>".
  void start_broadcast(BroadcastJob job);

 private:
  sluice::db::Database* database_;
  const Config* config_;
  sluice::redis::Client* redis_;
  tg::BotApi* api_ = nullptr;
  sluice::runtime::TaskSet* broadcasts_ = nullptr;
  std::optional<std::string> running_broadcast_;
};

namespace {

// Sends `text` to the update's chat as a reply to its message. A 403 marks
// the chat inactive instead of failing the handler.
asio::awaitable<std::optional<tg::Message>> reply(Context& ctx, std::string text,
                                                  std::optional<tg::InlineKeyboardMarkup> keyboard = std::nullopt) {
  const std::optional<std::int64_t> chat_id = ctx.chat_id();
  if (!chat_id) {
    co_return std::nullopt;
  }
  tg::SendMessage request{};
  request.chat_id = *chat_id;
  request.text = std::move(text);
  if (const tg::Message* message = ctx.message()) {
    tg::ReplyParameters target{};
    target.message_id = message->message_id;
    target.allow_sending_without_reply = true;
    request.reply_parameters = target;
  }
  if (keyboard) {
    request.reply_markup = tg::ReplyMarkup(std::move(*keyboard));
  }

  bool blocked = false;
  std::optional<tg::Message> sent;
  try {
    sent = co_await ctx.api().send_message(std::move(request));
  } catch (const tg::TelegramError& error) {
    if (error.error_code() != 403) {
      throw;
    }
    blocked = true;
  }
  if (blocked) {
    logger()->info("chat blocked the bot: chat_id={}", *chat_id);
    co_await ctx.service<Newsletter>().set_active(*chat_id, false);
  }
  co_return sent;
}

std::string display_name(const Context& ctx) {
  if (const tg::User* user = ctx.from()) {
    return user->first_name;
  }
  if (const tg::Chat* chat = ctx.chat()) {
    return chat->title.value_or("");
  }
  return {};
}

asio::awaitable<void> on_start(Context& ctx) {
  Newsletter& app = ctx.service<Newsletter>();
  const std::int64_t chat_id = *ctx.chat_id();
  std::optional<std::string> username;
  if (const tg::User* user = ctx.from()) {
    username = user->username;
  }
  co_await app.register_chat(chat_id, display_name(ctx), username);
  const bool subscribed = co_await app.is_subscribed(chat_id);
  std::string text = fmt::format("Hello {}! This bot sends a newsletter. {}", display_name(ctx),
                                 subscription_text(subscribed));
  co_await reply(ctx, std::move(text), toggle_keyboard(subscribed));
}

asio::awaitable<void> change_subscription(Context& ctx, bool subscribed) {
  Newsletter& app = ctx.service<Newsletter>();
  co_await app.set_subscribed(*ctx.chat_id(), display_name(ctx), subscribed);
  co_await reply(ctx, subscription_text(subscribed), toggle_keyboard(subscribed));
}

asio::awaitable<void> on_subscribe(Context& ctx) {
  co_await change_subscription(ctx, true);
}

asio::awaitable<void> on_unsubscribe(Context& ctx) {
  co_await change_subscription(ctx, false);
}

// The Subscribe / Unsubscribe button: answers the callback query and edits the
// message it belongs to.
asio::awaitable<void> on_toggle_button(Context& ctx) {
  Newsletter& app = ctx.service<Newsletter>();
  const bool subscribed = ctx.callback_data() == "sub:on";
  const std::int64_t chat_id = *ctx.chat_id();
  co_await app.set_subscribed(chat_id, display_name(ctx), subscribed);
  co_await ctx.answer(subscribed ? "Subscribed" : "Unsubscribed");

  const std::optional<std::int64_t> message_id = callback_message_id(*ctx.callback_query());
  if (!message_id) {
    co_return;
  }
  tg::EditMessageText edit{};
  edit.chat_id = chat_id;
  edit.message_id = *message_id;
  edit.text = subscription_text(subscribed);
  edit.reply_markup = toggle_keyboard(subscribed);
  try {
    co_await ctx.api().edit_message_text(std::move(edit));
  } catch (const tg::TelegramError& error) {
    // A second press of the same button leaves the text unchanged, which
    // Telegram rejects with 400 "message is not modified".
    if (error.error_code() != 400) {
      throw;
    }
  }
}

asio::awaitable<void> on_status(Context& ctx) {
  Newsletter& app = ctx.service<Newsletter>();
  const std::int64_t chat_id = *ctx.chat_id();
  const bool subscribed = co_await app.is_subscribed(chat_id);
  const std::int64_t recipients = co_await app.recipient_count();
  std::string text = fmt::format("{} Subscribers: {}.", subscription_text(subscribed), recipients);
  const tg::User* user = ctx.from();
  if (user != nullptr && app.is_admin(user->id)) {
    text += app.running_broadcast() ? " Running broadcast: " + *app.running_broadcast() + "."
                                    : " No broadcast is running.";
  }
  co_await reply(ctx, std::move(text), toggle_keyboard(subscribed));
}

asio::awaitable<void> on_help(Context& ctx) {
  std::string text =
      "/start registers you\n"
      "/subscribe starts the newsletter\n"
      "/unsubscribe stops it\n"
      "/status shows your subscription\n"
      "/broadcast <text> sends <text> to every subscriber (admins only)";
  co_await reply(ctx, std::move(text));
}

// /broadcast <text>: replies at once and runs the broadcast as a task.
asio::awaitable<void> on_broadcast(Context& ctx) {
  Newsletter& app = ctx.service<Newsletter>();
  const tg::User* user = ctx.from();
  if (user == nullptr || !app.is_admin(user->id)) {
    co_await reply(ctx, "Only admins can broadcast.");
    co_return;
  }
  std::string text(ctx.command_args());
  const auto first = text.find_first_not_of(" \n\t");
  text = first == std::string::npos ? std::string() : text.substr(first);
  if (text.empty()) {
    co_await reply(ctx, "Usage: /broadcast <text>");
    co_return;
  }

  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string id = "b" + std::to_string(now_ms);
  std::optional<std::string> holder = co_await app.lock_broadcast(id);
  if (holder) {
    co_await reply(ctx, "A broadcast is already running: " + *holder + ". Try again when it has finished.");
    co_return;
  }
  const std::int64_t recipients = co_await app.recipient_count();
  std::optional<tg::Message> status =
      co_await reply(ctx, fmt::format("Broadcast {} started: {} recipients.", id, recipients));
  if (!status) {
    co_await app.unlock_broadcast();
    co_return;
  }
  BroadcastJob job{.id = id, .text = std::move(text), .admin_chat_id = *ctx.chat_id(),
                   .status_message_id = status->message_id};
  co_await app.insert_broadcast(job);
  app.start_broadcast(std::move(job));
}

// my_chat_member: the user blocked ("kicked") or unblocked the bot.
asio::awaitable<void> on_membership(Context& ctx) {
  const auto& change = ctx.update().my_chat_member;
  if (!change) {
    co_return;
  }
  const auto& status = static_cast<const tg::ChatMember::Variant&>(change->new_chat_member);
  const bool gone = std::holds_alternative<tg::ChatMemberBanned>(status) ||
                    std::holds_alternative<tg::ChatMemberLeft>(status);
  co_await ctx.service<Newsletter>().set_active(change->chat.id, !gone);
}

asio::awaitable<void> edit_status(tg::BotApi* api, std::int64_t chat_id, std::int64_t message_id, std::string text) {
  tg::EditMessageText edit{};
  edit.chat_id = chat_id;
  edit.message_id = message_id;
  edit.text = std::move(text);
  try {
    co_await api->edit_message_text(std::move(edit));
  } catch (const tg::BotApiError& error) {
    // Progress is informative; a failed edit must not stop the broadcast.
    logger()->warn("progress edit failed: chat_id={} message_id={} error={}", chat_id, message_id, error.what());
  }
}

asio::awaitable<void> send_report(tg::BotApi* api, std::int64_t chat_id, std::string text) {
  tg::SendMessage message{};
  message.chat_id = chat_id;
  message.text = std::move(text);
  try {
    co_await api->send_message(std::move(message));
  } catch (const tg::BotApiError& error) {
    logger()->warn("broadcast report not sent: chat_id={} error={}", chat_id, error.what());
  }
}

asio::awaitable<void> run_broadcast(Newsletter* app, tg::BotApi* api, BroadcastJob job) {
  const Config& config = app->config();
  sluice::broadcast::SqlRecipientSource source(app->database(), kRecipientsPage, kRecipientsCount);
  sluice::broadcast::SqlCheckpointStore checkpoints(app->database());

  sluice::broadcast::BroadcastCallbacks callbacks;
  callbacks.on_blocked = [app](std::int64_t chat_id) { return app->set_active(chat_id, false); };
  callbacks.on_migrated = [app](std::int64_t old_chat_id, std::int64_t new_chat_id) {
    return app->move_chat(old_chat_id, new_chat_id);
  };
  callbacks.on_progress = [api, job](sluice::broadcast::Progress progress) {
    return edit_status(api, job.admin_chat_id, job.status_message_id, progress_text(job.id, progress));
  };
  sluice::broadcast::TextMessage message{.text = job.text, .parse_mode = {},
                                         .allow_paid_broadcast = config.paid_broadcast};
  sluice::broadcast::BroadcastOptions options{
      .id = job.id,
      .concurrency = config.broadcast_concurrency,
      .page_size = 500,
      .progress_interval = std::chrono::duration_cast<std::chrono::milliseconds>(config.progress_interval),
      .follow_migrations = true,
  };
  sluice::broadcast::Broadcast engine(sluice::broadcast::make_text_sender(*api, std::move(message)), source,
                                      checkpoints, std::move(options), std::move(callbacks));

  std::exception_ptr failure;
  sluice::broadcast::Report report;
  try {
    report = co_await engine.run();
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    // Cancelled or failed: the checkpoints stay, and the next start resumes.
    app->unlock_broadcast_locally();
    std::rethrow_exception(failure);
  }

  co_await app->finish_broadcast(job.id, report);
  co_await edit_status(api, job.admin_chat_id, job.status_message_id, progress_text(job.id, report.totals));
  std::string summary = fmt::format(
      "Broadcast {} finished in {:.1f} s: {} delivered, {} blocked, {} failed ({:.0f} messages/s).", job.id,
      std::chrono::duration<double>(report.duration).count(), report.totals.delivered, report.totals.blocked,
      report.totals.failed, report.rate);
  co_await send_report(api, job.admin_chat_id, std::move(summary));
  logger()->info("broadcast report sent: broadcast={} admin_chat_id={}", job.id, job.admin_chat_id);
  co_await app->unlock_broadcast();
}

sluice::dispatch::Router make_router() {
  namespace filters = sluice::dispatch::filters;
  sluice::dispatch::Router router("newsletter");
  router.on_command("start", on_start, "start");
  router.on_command("subscribe", on_subscribe, "subscribe");
  router.on_command("unsubscribe", on_unsubscribe, "unsubscribe");
  router.on_command("status", on_status, "status");
  router.on_command("help", on_help, "help");
  router.on_command("broadcast", on_broadcast, "broadcast");
  router.on_callback_query(filters::callback_data_prefix("sub:"), on_toggle_button, "toggle_button");
  router.on_my_chat_member(filters::any(), on_membership, "membership");
  return router;
}

asio::awaitable<void> serve(const Config& config, sluice::runtime::BlockingPool* blocking) {
  auto executor = co_await asio::this_coro::executor;

  sluice::db::MigrateOptions migrate_options;
  migrate_options.blocking_pool = blocking;
  sluice::db::MigrationReport migrated =
      co_await sluice::db::migrate(executor, config.database_url, config.migrations, migrate_options);
  logger()->info("schema ready: database={} applied={} already_applied={}",
                 sluice::db::redact_url(config.database_url), migrated.applied.size(), migrated.already_applied);

  sluice::db::DatabaseOptions database_options;
  database_options.sqlite.blocking_pool = blocking;
  sluice::db::Database database(executor, config.database_url, database_options);

  std::unique_ptr<sluice::redis::Client> redis;
  if (!config.redis_url.empty()) {
    sluice::redis::ClientOptions redis_options;
    redis_options.url = config.redis_url;
    redis_options.client_name = "newsletter";
    redis = std::make_unique<sluice::redis::Client>(executor, std::move(redis_options));
    co_await redis->ping();
  }

  Newsletter app(database, config, redis.get());
  sluice::dispatch::Router router = make_router();
  // The update watermark and dead letters live in the bot's database, so a
  // restarted bot neither loses nor handles again what it confirmed. The
  // bot id is the part of the token before ':'.
  sluice::updates::SqlOffsetStore offsets(database, config.token.substr(0, config.token.find(':')));
  co_await offsets.create_tables();

  sluice::dispatch::BotOptions bot_options;
  bot_options.offset_store = &offsets;
  bot_options.api.token = config.token;
  bot_options.api.base_url = config.api_url;
  bot_options.api.flood.global.limit = config.global_rate;
  bot_options.max_concurrent_updates = config.max_concurrent_updates;
  sluice::dispatch::Bot bot(executor, std::move(bot_options), router);
  bot.provide(app);
  sluice::runtime::TaskSet broadcasts(executor, "broadcasts");
  app.attach(bot.api(), broadcasts);
  sluice::runtime::ShutdownSignals signals(executor, [&bot](int) { bot.stop(); });

  // A broadcast stopped by a crash or a signal goes on where it stopped.
  std::vector<BroadcastJob> unfinished = co_await app.unfinished_broadcasts();
  for (BroadcastJob& job : unfinished) {
    std::optional<std::string> holder = co_await app.lock_broadcast(job.id);
    if (holder) {
      logger()->warn("broadcast not resumed: broadcast={} running={}", job.id, *holder);
      continue;
    }
    logger()->info("resuming broadcast: broadcast={}", job.id);
    app.start_broadcast(std::move(job));
  }

  logger()->info("bot started: api_url={} admins={} paid_broadcast={} updates={}", config.api_url,
                 config.admins.size(), config.paid_broadcast, config.webhook_port != 0 ? "webhook" : "polling");
  std::exception_ptr failure;
  try {
    if (config.webhook_port != 0) {
      sluice::dispatch::WebhookServerOptions webhook;
      webhook.webhook.secret_token = config.webhook_secret;
      webhook.server.address = config.webhook_address;
      webhook.server.port = config.webhook_port;
      webhook.public_url = config.webhook_url;
      co_await bot.run_webhook(std::move(webhook));
    } else {
      co_await bot.run_polling();
    }
  } catch (...) {
    failure = std::current_exception();
  }
  co_await broadcasts.close(kBroadcastShutdownGrace);
  signals.cancel();
  if (redis) {
    co_await redis->close();
  }
  co_await database.close();
  if (failure) {
    std::rethrow_exception(failure);
  }
  logger()->info("bot stopped");
}

}  // namespace

void Newsletter::start_broadcast(BroadcastJob job) {
  std::string name = "broadcast:" + job.id;
  broadcasts_->spawn(std::move(name), run_broadcast(this, api_, std::move(job)));
}

int run(const Config& config) {
  asio::io_context io;
  sluice::runtime::BlockingPool blocking(config.blocking_threads, "newsletter-db");
  int status = 0;
  auto on_done = [&status](std::exception_ptr error) {
    if (!error) {
      return;
    }
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& exception) {
      logger()->error("bot failed: error={}", exception.what());
    }
    status = 1;
  };
  asio::co_spawn(io, serve(config, &blocking), on_done);
  io.run();
  return status;
}

}  // namespace newsletter
