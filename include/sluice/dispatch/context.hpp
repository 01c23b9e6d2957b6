#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include <sluice/dispatch/command.hpp>
#include <sluice/telegram/types_fwd.hpp>
#include <sluice/updates/update_kind.hpp>

namespace sluice::telegram {
class BotApi;
}

namespace sluice::runtime {
class TaskSet;
}

namespace sluice::fsm {
class Conversation;
class Storage;
}  // namespace sluice::fsm

namespace sluice::updates {
class WebhookHandler;
}

namespace sluice::dispatch {

/// Objects a bot's handlers reach through `Context::service<T>()`, one per
/// type: a database, a Redis client, the bot's own state. The registry
/// stores pointers; each object must outlive the Bot.
class ServiceRegistry {
 public:
  /// Registers `service` as the object of type T, replacing an earlier one.
  template <class T>
  void add(T& service) {
    services_[std::type_index(typeid(T))] = &service;
  }

  /// Returns the object of type T. Throws std::out_of_range naming the type
  /// when none was registered.
  template <class T>
  T& get() const {
    auto found = services_.find(std::type_index(typeid(T)));
    if (found == services_.end()) {
      throw_missing(typeid(T).name());
    }
    return *static_cast<T*>(found->second);
  }

  /// Returns the object of type T, or nullptr when none was registered.
  template <class T>
  T* find() const noexcept {
    auto found = services_.find(std::type_index(typeid(T)));
    return found == services_.end() ? nullptr : static_cast<T*>(found->second);
  }

 private:
  [[noreturn]] static void throw_missing(const char* type_name);

  std::map<std::type_index, void*> services_;
};

/// The parts of a bot that a Context uses. Bot fills it; tests may build one.
struct BotEnvironment {
  telegram::BotApi* api = nullptr;
  /// The TaskSet in which Context::spawn starts background tasks.
  runtime::TaskSet* tasks = nullptr;
  const ServiceRegistry* services = nullptr;
  /// The bot's username without "@", for commands such as "/start@name".
  std::string username{};
  /// The storage of conversation states (BotOptions::fsm_storage), or
  /// nullptr.
  fsm::Storage* fsm_storage = nullptr;
  /// The bot's user id: the digits before ':' in its token.
  std::int64_t bot_id = 0;
  /// The webhook handler while Bot::run_webhook runs, else nullptr.
  updates::WebhookHandler* webhook = nullptr;
};

/// One update being handled, with the bot's API and services: the argument
/// of every handler and filter.
///
/// A Context lives while its update is handled, on the bot's event loop.
/// References and pointers it returns stay valid until the handler
/// returns; copy what a spawned task needs.
class Context {
 public:
  /// `update` and `environment` must outlive the Context.
  Context(const telegram::Update& update, const BotEnvironment& environment);

  const telegram::Update& update() const noexcept { return *update_; }
  std::int64_t update_id() const noexcept;
  updates::UpdateKind kind() const noexcept { return kind_; }

  /// The chat of the update (a callback query's is that of its message).
  std::optional<std::int64_t> chat_id() const noexcept { return chat_id_; }
  /// The chat of the update, or nullptr.
  const telegram::Chat* chat() const noexcept;
  /// The user who caused the update, or nullptr (channel posts, polls).
  const telegram::User* from() const noexcept;
  /// The message of a message kind (message, edited_message, channel_post,
  /// business and guest messages), or nullptr.
  const telegram::Message* message() const noexcept;
  /// The callback query, or nullptr.
  const telegram::CallbackQuery* callback_query() const noexcept;
  /// The callback query's data, or an empty view.
  std::string_view callback_data() const noexcept;
  /// The message's text, or its caption, or an empty view.
  std::string_view text() const noexcept;
  /// The command that starts the message's text, addressed to this bot.
  const std::optional<Command>& command() const noexcept { return command_; }
  /// The command's arguments, or an empty view without a command.
  std::string_view command_args() const noexcept;

  /// The bot's Bot API client.
  telegram::BotApi& api() const noexcept { return *environment_->api; }
  /// The bot's username without "@".
  const std::string& bot_username() const noexcept { return environment_->username; }

  /// The object of type T registered on the bot (Bot::provide). Throws
  /// std::out_of_range naming the type when none was.
  template <class T>
  T& service() const {
    return environment_->services->get<T>();
  }

  /// Starts `task` in the bot's background TaskSet under `name`, so it may
  /// outlive the handler; shutdown waits for it, then cancels it. The task
  /// must not refer to this Context or the update: copy what it needs.
  void spawn(std::string name, boost::asio::awaitable<void> task) const;

  /// Sends `text` to the update's chat (in its forum topic, if any) with
  /// sendMessage and returns the sent message. When Telegram rejects it
  /// because the group became a supergroup (migrate_to_chat_id), moves the
  /// chat's conversations to the new id and sends once more there. Throws
  /// std::logic_error when the update has no chat, and the BotApi's errors.
  boost::asio::awaitable<telegram::Message> reply(std::string text) const;

  /// Calls answerCallbackQuery for the update's callback query; an empty
  /// `text` only stops the client's progress indicator. Throws
  /// std::logic_error when the update is not a callback query.
  boost::asio::awaitable<void> answer(std::string text = {}, bool show_alert = false) const;

  /// Returns whether a Bot API call can still travel in the reply to the
  /// webhook request that delivered this update (see
  /// call_in_webhook_reply in <sluice/dispatch/webhook_reply.hpp>).
  bool can_reply_by_webhook() const;
  /// Puts `call` (JSON with "method") in that reply; returns false when it
  /// cannot (see updates::WebhookHandler::offer_reply).
  bool offer_webhook_reply(std::string call) const;

  /// The conversation of this update's chat and user (see
  /// BotOptions::fsm_storage), read when its lock was taken. Throws
  /// std::logic_error when the bot has no fsm_storage or the update has
  /// neither chat nor user.
  fsm::Conversation& state() const;
  /// The conversation, or nullptr when there is none (see state()).
  fsm::Conversation* conversation() const noexcept { return conversation_; }
  void set_conversation(fsm::Conversation* conversation) noexcept { conversation_ = conversation; }

  /// The name of the handler running now, for logs ("" before routing).
  const std::string& handler_name() const noexcept { return handler_name_; }
  void set_handler_name(std::string name) { handler_name_ = std::move(name); }

 private:
  const telegram::Update* update_;
  const BotEnvironment* environment_;
  updates::UpdateKind kind_;
  std::optional<std::int64_t> chat_id_;
  std::optional<Command> command_;
  std::string handler_name_;
  fsm::Conversation* conversation_ = nullptr;
};

}  // namespace sluice::dispatch
