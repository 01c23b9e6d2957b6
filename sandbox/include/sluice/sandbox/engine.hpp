#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <sluice/sandbox/faults.hpp>
#include <sluice/sandbox/flood.hpp>
#include <sluice/sandbox/request.hpp>
#include <sluice/sandbox/stats.hpp>
#include <sluice/sandbox/world.hpp>

namespace sluice::sandbox {

/// Webhook delivery settings of the sandbox (not of the bot).
struct WebhookOptions {
  /// Delay before the second attempt of a failed update; each further
  /// failure doubles it up to `retry_max`. A Retry-After header in the bot's
  /// reply replaces the delay (capped at 3600 s, as Telegram does).
  std::chrono::milliseconds retry_initial = std::chrono::seconds(1);
  std::chrono::milliseconds retry_max = std::chrono::seconds(60);
  /// Reject webhook URLs Telegram rejects: plain http, and ports other than
  /// 443, 80, 88 and 8443. Off by default so tests can use
  /// http://127.0.0.1:<ephemeral port>.
  bool require_https = false;
  /// Time the sandbox waits for the bot's webhook reply.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(60);
};

struct EngineOptions {
  BotIdentity bot;
  FloodOptions flood;
  std::vector<FaultRule> faults;
  WebhookOptions webhook;
  /// update_id of the first update. Telegram starts at an arbitrary number.
  std::int64_t first_update_id = 1;
  /// Unix time of the sandbox's start, used for every `date` field; 0 takes
  /// the system clock when the engine is created.
  std::int64_t start_unix_time = 0;
  /// Recorded calls kept for GET /sandbox/calls; older ones are dropped
  /// (counters keep counting).
  std::size_t max_recorded_calls = 100'000;
  /// Messages kept per chat for edits, deletes, copies and replies; older
  /// ones behave as deleted.
  std::size_t max_messages_per_chat = 1'000;
  /// Seed of every random choice (fault draws, callback query ids).
  std::uint64_t seed = 1;
};

/// A reply to a Bot API or control request: HTTP status and JSON body.
struct ApiReply {
  unsigned status = 200;
  std::string body;
};

/// getUpdates found nothing to return: the caller waits until `deadline`
/// or until the engine's state changes, then calls
/// `Engine::resume_poll(ticket, ...)`. The caller must resume every waiting
/// poll after each call that changes state: a newer getUpdates makes the
/// older one answer 409 Conflict.
struct PollWait {
  std::uint64_t ticket = 0;
  Instant deadline;
};

using Outcome = std::variant<ApiReply, PollWait>;

/// An update the sandbox must POST to the bot's webhook.
struct WebhookDelivery {
  /// Changes on every setWebhook/deleteWebhook; results for an older
  /// generation are ignored.
  std::uint64_t generation = 0;
  std::int64_t update_id = 0;
  std::string url;
  std::string secret_token;
  std::string body;
};

/// How a webhook POST ended.
struct WebhookResult {
  bool ok = false;
  /// Telegram's wording for last_error_message, e.g. "Wrong response from
  /// the webhook: 500 Internal Server Error" or "Connection refused".
  std::string error;
  /// Seconds from the bot's Retry-After header; 0 when absent.
  std::int64_t retry_after = 0;
};

/// Telegram's request semantics and the sandbox's state, with no I/O:
/// users, chats, messages, files, the update queue with getUpdates offset
/// rules and webhook scheduling, validation, flood limits, fault decisions,
/// recorded calls and counters. Every function takes the current time, so
/// tests drive it without clocks or sockets. Not thread-safe.
class Engine {
 public:
  explicit Engine(EngineOptions options = {}, Instant now = Clock::now());

  // ------------------------------------------------------------ world ----

  /// Adds or replaces a user and its private chat.
  void add_user(User user);
  /// Adds or replaces a chat. A group with migrated_to_chat_id also gets
  /// the target supergroup if it is unknown.
  void add_chat(Chat chat);
  User* find_user(std::int64_t id);
  Chat* find_chat(std::int64_t id);
  BotIdentity const& bot() const { return options_.bot; }

  // ---------------------------------------------------------- updates ----

  /// Queues an update after giving it the next update_id (an existing
  /// update_id is overwritten in place, keeping the key order). Users and
  /// chats named in it become known. Returns the update_id, or nullopt when
  /// the update's kind is excluded by the bot's allowed_updates.
  std::optional<std::int64_t> push_update(boost::json::object update, Instant now);

  /// Queues a text message from `user_id` in `chat_id` (the user's private
  /// chat when 0), with the entities Telegram detects ("/start" gets a
  /// bot_command). Returns the message_id. Throws std::invalid_argument
  /// for an unknown user or chat.
  std::int64_t push_user_message(std::int64_t user_id, std::int64_t chat_id, std::string_view text,
                                 Instant now);

  /// Queues a callback query from `user_id` on the bot's message
  /// `message_id` in `chat_id`. `data` defaults to the first callback
  /// button's data. Returns the query id. Throws std::invalid_argument when
  /// the message is unknown or has no callback button.
  std::string push_callback_query(std::int64_t user_id, std::int64_t chat_id, std::int64_t message_id,
                                  std::optional<std::string> data, Instant now);

  /// Returns the id of the newest bot message in `chat_id` that has an
  /// inline keyboard with callback data, or nullopt.
  std::optional<std::int64_t> last_bot_message_with_buttons(std::int64_t chat_id) const;

  /// Marks a user as having blocked the bot and queues the my_chat_member
  /// update Telegram sends for it.
  void block_bot(std::int64_t user_id, Instant now);

  // ------------------------------------------------------- Bot API ----

  /// Handles one Bot API call. getUpdates may return a PollWait.
  Outcome handle(ApiRequest request, Instant now);

  /// Continues a waiting getUpdates: returns the updates if there are any,
  /// 409 if it was superseded or a webhook was set, an empty result once
  /// `now` reaches its deadline, and another PollWait otherwise.
  Outcome resume_poll(std::uint64_t ticket, Instant now);

  /// Forgets a waiting getUpdates whose client went away.
  void cancel_poll(std::uint64_t ticket);

  /// Returns a canned reply for a route that is not a Bot API method.
  static ApiReply not_found_reply();

  // ---------------------------------------------------------- webhook ----

  bool webhook_active() const { return !webhook_.url.empty(); }
  /// The sandbox's webhook settings (changed by apply_config).
  WebhookOptions const& webhook_options() const { return options_.webhook; }
  std::size_t webhook_max_connections() const { return static_cast<std::size_t>(webhook_.max_connections); }

  /// Takes the next update to POST: the oldest update of a chat with nothing
  /// in flight whose retry time has come, while fewer than max_connections
  /// deliveries are in flight. Updates of one chat go one at a time in order.
  std::optional<WebhookDelivery> next_webhook_delivery(Instant now);

  /// Returns when the next delivery becomes due, or nullopt when nothing
  /// waits (or the in-flight limit is reached).
  std::optional<Instant> next_webhook_wakeup() const;

  /// Records the end of a delivery: success confirms the update, failure
  /// schedules a retry and sets last_error_date / last_error_message.
  void finish_webhook_delivery(WebhookDelivery const& delivery, WebhookResult const& result, Instant now);

  // ----------------------------------------------------- faults, stats ----

  FaultInjector& faults() { return faults_; }
  void record_fault(FaultKind kind);

  Stats const& stats() const { return stats_; }
  /// GET /sandbox/stats body.
  boost::json::object stats_json(Instant now) const;
  /// GET /sandbox/calls body: recorded calls, oldest first, filtered by
  /// method (case-insensitive) and chat id when given.
  boost::json::array calls_json(std::optional<std::string_view> method, std::optional<std::int64_t> chat_id) const;

  /// Applies a POST /sandbox/config body: {"flood": {...}, "faults": [...],
  /// "webhook": {...}}. Throws std::invalid_argument naming the bad field.
  void apply_config(boost::json::object const& config);
  /// Returns the current configuration in the format apply_config reads.
  boost::json::object config_json() const;

  /// Evaluates a /sandbox/wait condition such as "all_confirmed",
  /// "calls.sendMessage>=3" or "confirmed>=10". Throws
  /// std::invalid_argument for a malformed condition.
  bool evaluate_condition(std::string_view condition) const;

  /// Number of queued updates not yet confirmed.
  std::size_t pending_updates() const { return updates_.size(); }

  /// Unix time the engine reports at `now`.
  std::int64_t unix_time(Instant now) const;

  /// Per-call state of the method handlers (defined in the sources).
  struct CallContext;

  struct StoredMessage {
    /// The message as Telegram returns it, serialized: kept as text because
    /// most messages are never read again, and a string costs one
    /// allocation where a JSON tree costs dozens.
    std::string json;
    bool from_bot = false;
    bool has_callback_button = false;
    std::string first_callback_data;
  };
  struct ChatState {
    Chat chat;
    std::map<std::int64_t, StoredMessage> messages;
    std::int64_t next_message_id = 1;
    /// Highest message id the bot has replied to (order check).
    std::int64_t last_replied_to = 0;
    /// When the oldest unanswered incoming message was delivered.
    std::optional<Instant> awaiting_reply_since;
  };
  struct QueuedUpdate {
    std::int64_t update_id = 0;
    std::string kind;
    /// Chat (or user) whose updates must reach a webhook in order.
    std::int64_t order_key = 0;
    std::string body;
    bool delivered = false;
    bool in_flight = false;
    int failures = 0;
    Instant retry_at{};
    /// Incoming message or callback query whose reply latency is measured.
    std::int64_t reply_chat_id = 0;
    std::string callback_query_id;
  };

 private:
  struct StoredFile {
    std::string kind;
    std::string file_unique_id;
    std::int64_t file_size = 0;
    std::string file_name;
    std::string mime_type;
    std::int64_t width = 0;
    std::int64_t height = 0;
  };
  struct WebhookState {
    std::string url;
    std::string secret_token;
    std::int64_t max_connections = 40;
    std::string ip_address;
    std::uint64_t generation = 0;
    std::int64_t last_error_date = 0;
    std::string last_error_message;
    std::size_t in_flight = 0;
  };
  struct CallbackQueryState {
    std::int64_t chat_id = 0;
    bool answered = false;
    Instant delivered_at{};
    bool delivered = false;
  };

  // Dispatch and the methods, one function per Bot API method.
  boost::json::value dispatch(std::string const& method_key, CallContext& call);
  boost::json::value get_me(CallContext& call);
  boost::json::value get_updates_immediate(CallContext& call);
  boost::json::value set_webhook(CallContext& call, bool remove);
  boost::json::value get_webhook_info(CallContext& call);
  boost::json::value send_message(CallContext& call);
  boost::json::value send_media(CallContext& call, std::string const& kind);
  boost::json::value edit_message_text(CallContext& call);
  boost::json::value delete_message(CallContext& call);
  boost::json::value answer_callback_query(CallContext& call);
  boost::json::value send_chat_action(CallContext& call);
  boost::json::value copy_or_forward(CallContext& call, bool forward);
  boost::json::value get_chat(CallContext& call);
  boost::json::value set_my_commands(CallContext& call);
  boost::json::value get_my_commands(CallContext& call);
  boost::json::value delete_my_commands(CallContext& call);

  Outcome begin_get_updates(CallContext& call);
  ApiReply updates_reply(std::size_t limit, Instant now);
  void confirm_updates(std::int64_t offset);
  void forget_update(std::int64_t update_id, bool confirmed);
  void schedule_order_key(std::int64_t order_key, Instant at);
  void rebuild_webhook_queues();
  bool update_kind_allowed(std::string_view kind) const;

  // Helpers shared by the message methods.
  ChatState& resolve_target_chat(CallContext& call, bool for_sending);
  ChatState& resolve_chat_param(CallContext& call, std::string_view name);
  void check_flood(CallContext& call, ChatState const& chat);
  std::int64_t allocate_message_id(ChatState& chat);
  boost::json::object user_json(User const& user, boost::json::storage_ptr storage = {}) const;
  boost::json::object bot_user_json(boost::json::storage_ptr storage = {}) const;
  boost::json::object chat_json(Chat const& chat, boost::json::storage_ptr storage = {}) const;
  boost::json::object new_message_json(ChatState& chat, std::int64_t message_id, Instant now, bool from_bot,
                                       boost::json::storage_ptr storage);
  StoredMessage& store_message(ChatState& chat, std::int64_t message_id, boost::json::object const& json,
                               bool from_bot);
  StoredMessage* find_message(ChatState& chat, std::int64_t message_id);
  std::optional<std::int64_t> reply_target(CallContext& call, ChatState& chat, boost::json::object& message);
  void attach_reply_markup(CallContext& call, boost::json::object& message, StoredMessage* stored);
  void note_bot_activity(ChatState& chat, std::optional<std::int64_t> replied_to, Instant now);
  std::string new_file_id(std::string_view kind, std::string& unique_id);
  void learn_from_update(boost::json::object const& update);
  void learn_user(boost::json::value const& value);
  void learn_chat(boost::json::value const& value);

  void record_call(std::string const& method, boost::json::object params, std::int64_t chat_id,
                   ApiReply const& reply, Instant now);
  // Ends the waiting long poll `ticket` with 409 and `description`, and
  // marks its recorded call as failed.
  ApiReply end_poll_in_conflict(std::uint64_t ticket, std::string_view description);

  EngineOptions options_;
  Instant start_;
  std::int64_t start_unix_;
  FloodControl flood_;
  FaultInjector faults_;
  std::mt19937_64 random_;

  std::unordered_map<std::int64_t, User> users_;
  std::unordered_map<std::int64_t, ChatState> chats_;
  std::unordered_map<std::string, std::int64_t> usernames_;
  std::unordered_map<std::string, StoredFile> files_;
  std::unordered_map<std::string, CallbackQueryState> callback_queries_;
  std::map<std::string, boost::json::value> commands_;
  std::int64_t shared_message_id_ = 1;
  std::uint64_t next_file_number_ = 1;

  std::map<std::int64_t, QueuedUpdate> updates_;
  std::int64_t next_update_id_;
  std::optional<std::vector<std::string>> allowed_updates_;
  std::optional<std::uint64_t> active_poll_;
  std::unordered_map<std::uint64_t, std::pair<Instant, std::size_t>> polls_;
  std::unordered_set<std::uint64_t> superseded_polls_;
  // Sequence number of the recorded call of each waiting long poll.
  std::unordered_map<std::uint64_t, std::uint64_t> poll_records_;
  std::uint64_t next_poll_ticket_ = 1;

  WebhookState webhook_;
  std::unordered_map<std::int64_t, std::deque<std::int64_t>> order_queues_;
  std::set<std::pair<Instant, std::int64_t>> ready_keys_;

  Stats stats_;
  std::deque<RecordedCall> calls_;
};

}  // namespace sluice::sandbox
