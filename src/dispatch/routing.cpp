// Context, commands, filters and the Router: the parts of dispatch that
// decide which handler runs, with no I/O of their own.

#include <sluice/dispatch/command.hpp>
#include <sluice/dispatch/context.hpp>
#include <sluice/dispatch/filter.hpp>
#include <sluice/dispatch/router.hpp>

#include <algorithm>
#include <cctype>
#include <regex>
#include <stdexcept>
#include <utility>
#include <variant>

#include <sluice/fsm/conversation.hpp>
#include <sluice/fsm/storage.hpp>
#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/task_set.hpp>
#include <sluice/telegram/bot_api.hpp>
#include <sluice/telegram/errors.hpp>
#include <sluice/telegram/update.hpp>
#include <sluice/updates/update_kind.hpp>
#include <sluice/updates/webhook.hpp>

namespace sluice::dispatch {

// -- commands -----------------------------------------------------------------

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return std::ranges::equal(a, b, [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

}  // namespace

std::optional<Command> parse_command(std::string_view text, std::string_view bot_username) {
  if (text.size() < 2 || text.front() != '/') {
    return std::nullopt;
  }
  std::size_t end = 1;
  while (end < text.size() && !is_space(text[end])) {
    ++end;
  }
  std::string_view token = text.substr(1, end - 1);
  std::string_view mention;
  if (const std::size_t at = token.find('@'); at != std::string_view::npos) {
    mention = token.substr(at + 1);
    token = token.substr(0, at);
  }
  if (token.empty()) {
    return std::nullopt;
  }
  if (!mention.empty() && !bot_username.empty() && !equal_ignoring_case(mention, bot_username)) {
    return std::nullopt;
  }

  std::string_view args = text.substr(end);
  while (!args.empty() && is_space(args.front())) {
    args.remove_prefix(1);
  }
  while (!args.empty() && is_space(args.back())) {
    args.remove_suffix(1);
  }
  return Command{.name = std::string(token), .mention = std::string(mention), .args = std::string(args)};
}

// -- services and context -----------------------------------------------------

void ServiceRegistry::throw_missing(const char* type_name) {
  throw std::out_of_range(std::string("no service of type ") + type_name +
                          " is registered; call Bot::provide before the bot starts");
}

Context::Context(const telegram::Update& update, const BotEnvironment& environment)
    : update_(&update),
      environment_(&environment),
      kind_(updates::kind_of(update)),
      chat_id_(updates::chat_id_of(update)) {
  if (const telegram::Message* message = updates::message_of(update); message != nullptr && message->text) {
    command_ = parse_command(*message->text, environment.username);
  }
}

std::int64_t Context::update_id() const noexcept { return update_->update_id; }

const telegram::Message* Context::message() const noexcept { return updates::message_of(*update_); }

const telegram::CallbackQuery* Context::callback_query() const noexcept {
  return update_->callback_query ? &*update_->callback_query : nullptr;
}

const telegram::Chat* Context::chat() const noexcept {
  if (const telegram::Message* message = this->message()) {
    return &message->chat;
  }
  if (update_->callback_query && update_->callback_query->message) {
    return std::visit([](const auto& message) { return &message.chat; },
                      static_cast<const telegram::MaybeInaccessibleMessage::Variant&>(
                          *update_->callback_query->message));
  }
  const telegram::Update& update = *update_;
  if (update.my_chat_member) return &update.my_chat_member->chat;
  if (update.chat_member) return &update.chat_member->chat;
  if (update.chat_join_request) return &update.chat_join_request->chat;
  if (update.message_reaction) return &update.message_reaction->chat;
  if (update.message_reaction_count) return &update.message_reaction_count->chat;
  if (update.chat_boost) return &update.chat_boost->chat;
  if (update.removed_chat_boost) return &update.removed_chat_boost->chat;
  if (update.deleted_business_messages) return &update.deleted_business_messages->chat;
  return nullptr;
}

const telegram::User* Context::from() const noexcept {
  const telegram::Update& update = *update_;
  if (const telegram::Message* message = this->message()) {
    return message->from ? &*message->from : nullptr;
  }
  if (update.callback_query) return &update.callback_query->from;
  if (update.inline_query) return &update.inline_query->from;
  if (update.chosen_inline_result) return &update.chosen_inline_result->from;
  if (update.shipping_query) return &update.shipping_query->from;
  if (update.pre_checkout_query) return &update.pre_checkout_query->from;
  if (update.purchased_paid_media) return &update.purchased_paid_media->from;
  if (update.business_connection) return &update.business_connection->user;
  if (update.poll_answer && update.poll_answer->user) return &*update.poll_answer->user;
  if (update.message_reaction && update.message_reaction->user) {
    return &*update.message_reaction->user;
  }
  if (update.my_chat_member) return &update.my_chat_member->from;
  if (update.chat_member) return &update.chat_member->from;
  if (update.chat_join_request) return &update.chat_join_request->from;
  if (update.managed_bot) return &update.managed_bot->user;
  return nullptr;
}

std::string_view Context::callback_data() const noexcept {
  if (update_->callback_query && update_->callback_query->data) {
    return *update_->callback_query->data;
  }
  return {};
}

std::string_view Context::text() const noexcept {
  if (const telegram::Message* message = this->message()) {
    if (message->text) {
      return *message->text;
    }
    if (message->caption) {
      return *message->caption;
    }
  }
  return {};
}

std::string_view Context::command_args() const noexcept {
  return command_ ? std::string_view(command_->args) : std::string_view();
}

void Context::spawn(std::string name, boost::asio::awaitable<void> task) const {
  if (environment_->tasks == nullptr) {
    throw std::logic_error("Context::spawn: the bot has no TaskSet (task " + name + ")");
  }
  environment_->tasks->spawn(std::move(name), std::move(task));
}

boost::asio::awaitable<telegram::Message> Context::reply(std::string text) const {
  if (!chat_id_) {
    throw std::logic_error("Context::reply: update " + std::to_string(update_id()) + " of kind " +
                           std::string(updates::to_string(kind_)) + " has no chat");
  }
  telegram::SendMessage request{.chat_id = *chat_id_, .text = std::move(text)};
  if (const telegram::Message* message = this->message();
      message != nullptr && message->is_topic_message.value_or(false)) {
    request.message_thread_id = message->message_thread_id;
  }

  // One co_await of the send for both attempts, and no Message local: the
  // coroutine frame keeps a slot for each, and a Message is 1.6 KB.
  for (bool migrated = false;; migrated = true) {
    std::optional<std::int64_t> migrated_to;
    try {
      // Serialised here, so the frame keeps no copy of the request.
      auto sending = environment_->api->send_message(request);
      co_return co_await std::move(sending);
    } catch (const telegram::TelegramError& error) {
      if (!error.migrate_to_chat_id() || migrated) {
        throw;
      }
      migrated_to = error.migrate_to_chat_id();
    }

    // The group became a supergroup: its conversations and the message
    // move to the new id, once.
    if (environment_->fsm_storage != nullptr) {
      const std::size_t moved =
          co_await environment_->fsm_storage->move_chat(environment_->bot_id, *chat_id_, *migrated_to);
      runtime::module_logger("sluice.dispatch")
          ->info("fsm chat migrated old_chat_id={} new_chat_id={} records={} update_id={}", *chat_id_,
                 *migrated_to, moved, update_id());
    }
    request.chat_id = *migrated_to;
  }
}

bool Context::can_reply_by_webhook() const {
  return environment_->webhook != nullptr && environment_->webhook->can_reply(update_id());
}

bool Context::offer_webhook_reply(std::string call) const {
  return environment_->webhook != nullptr && environment_->webhook->offer_reply(update_id(), std::move(call));
}

fsm::Conversation& Context::state() const {
  if (conversation_ != nullptr) {
    return *conversation_;
  }
  if (environment_->fsm_storage == nullptr) {
    throw std::logic_error("Context::state: the bot has no conversation storage; set BotOptions::fsm_storage");
  }
  throw std::logic_error("Context::state: update " + std::to_string(update_id()) + " of kind " +
                         std::string(updates::to_string(kind_)) + " has neither chat nor user, so no conversation");
}

boost::asio::awaitable<void> Context::answer(std::string text, bool show_alert) const {
  if (!update_->callback_query) {
    throw std::logic_error("Context::answer: update " + std::to_string(update_id()) + " of kind " +
                           std::string(updates::to_string(kind_)) + " is not a callback query");
  }
  telegram::AnswerCallbackQuery request{.callback_query_id = update_->callback_query->id};
  if (!text.empty()) {
    request.text = std::move(text);
  }
  if (show_alert) {
    request.show_alert = true;
  }
  co_await environment_->api->answer_callback_query(std::move(request));
}

// -- filters ------------------------------------------------------------------

Filter::Filter(Predicate predicate)
    : predicate_(predicate ? std::make_shared<const Predicate>(std::move(predicate)) : nullptr) {}

bool Filter::operator()(const Context& context) const {
  return predicate_ == nullptr || (*predicate_)(context);
}

Filter operator&&(Filter left, Filter right) {
  return Filter([left = std::move(left), right = std::move(right)](const Context& context) {
    return left(context) && right(context);
  });
}

Filter operator||(Filter left, Filter right) {
  return Filter([left = std::move(left), right = std::move(right)](const Context& context) {
    return left(context) || right(context);
  });
}

Filter operator!(Filter filter) {
  return Filter([filter = std::move(filter)](const Context& context) { return !filter(context); });
}

namespace filters {

Filter any() { return Filter(); }

Filter command(std::string name) {
  return Filter([name = std::move(name)](const Context& context) {
    return context.command() && context.command()->name == name;
  });
}

Filter any_command() {
  return Filter([](const Context& context) { return context.command().has_value(); });
}

Filter text_equals(std::string text) {
  return Filter([text = std::move(text)](const Context& context) {
    return context.message() != nullptr && context.text() == text;
  });
}

Filter text_matches(const std::string& pattern) {
  auto regex = std::make_shared<const std::regex>(pattern, std::regex::ECMAScript);
  return Filter([regex](const Context& context) {
    if (context.message() == nullptr) {
      return false;
    }
    const std::string_view text = context.text();
    return std::regex_search(text.begin(), text.end(), *regex);
  });
}

Filter has_text() {
  return Filter([](const Context& context) {
    const telegram::Message* message = context.message();
    return message != nullptr && message->text.has_value();
  });
}

Filter callback_data_equals(std::string data) {
  return Filter([data = std::move(data)](const Context& context) {
    return context.callback_query() != nullptr && context.callback_data() == data;
  });
}

Filter callback_data_prefix(std::string prefix) {
  return Filter([prefix = std::move(prefix)](const Context& context) {
    return context.callback_query() != nullptr && context.callback_data().starts_with(prefix);
  });
}

Filter chat_type(std::string type) { return chat_types({std::move(type)}); }

Filter chat_types(std::vector<std::string> types) {
  return Filter([types = std::move(types)](const Context& context) {
    const telegram::Chat* chat = context.chat();
    return chat != nullptr && std::ranges::find(types, chat->type) != types.end();
  });
}

Filter from_users(std::vector<std::int64_t> user_ids) {
  return Filter([user_ids = std::move(user_ids)](const Context& context) {
    const telegram::User* user = context.from();
    return user != nullptr && std::ranges::find(user_ids, user->id) != user_ids.end();
  });
}

Filter chat_ids(std::vector<std::int64_t> chat_ids) {
  return Filter([chat_ids = std::move(chat_ids)](const Context& context) {
    return context.chat_id() && std::ranges::find(chat_ids, *context.chat_id()) != chat_ids.end();
  });
}

Filter in_state(std::string name) {
  return Filter([name = std::move(name)](const Context& context) {
    const fsm::Conversation* conversation = context.conversation();
    return conversation != nullptr && conversation->state() == name;
  });
}

Filter any_state() {
  return Filter([](const Context& context) {
    const fsm::Conversation* conversation = context.conversation();
    return conversation != nullptr && !conversation->state().empty();
  });
}

Filter no_state() {
  return Filter([](const Context& context) {
    const fsm::Conversation* conversation = context.conversation();
    return conversation == nullptr || conversation->state().empty();
  });
}

}  // namespace filters

// -- router -------------------------------------------------------------------

struct Router::Entry {
  // A handler entry when `child` is null.
  updates::UpdateKind kind = updates::UpdateKind::unknown;
  Filter filter;
  Handler handler;
  std::string name;
  std::unique_ptr<const Router> child;
};

Router::Router(std::string name) : name_(std::move(name)) {}

Router& Router::on(updates::UpdateKind kind, Filter filter, Handler handler, std::string name) {
  if (!handler) {
    throw std::invalid_argument("Router::on: empty handler for " + std::string(updates::to_string(kind)));
  }
  if (name.empty()) {
    name = name_ + "/" + std::string(updates::to_string(kind)) + "#" + std::to_string(entries_.size());
  }
  auto entry = std::make_shared<Entry>();
  entry->kind = kind;
  entry->filter = std::move(filter);
  entry->handler = std::move(handler);
  entry->name = std::move(name);
  entries_.push_back(std::move(entry));
  return *this;
}

Router& Router::on_message(Filter filter, Handler handler, std::string name) {
  return on(updates::UpdateKind::message, std::move(filter), std::move(handler), std::move(name));
}

Router& Router::on_message(Handler handler, std::string name) {
  return on_message(Filter(), std::move(handler), std::move(name));
}

Router& Router::on_command(std::string command, Handler handler, std::string name) {
  return on_command(std::move(command), Filter(), std::move(handler), std::move(name));
}

Router& Router::on_command(std::string command, Filter filter, Handler handler, std::string name) {
  if (name.empty()) {
    name = name_ + "/command /" + command;
  }
  Filter matches = filters::command(std::move(command)) && std::move(filter);
  return on(updates::UpdateKind::message, std::move(matches), std::move(handler), std::move(name));
}

Router& Router::on_edited_message(Filter filter, Handler handler, std::string name) {
  return on(updates::UpdateKind::edited_message, std::move(filter), std::move(handler), std::move(name));
}

Router& Router::on_channel_post(Filter filter, Handler handler, std::string name) {
  return on(updates::UpdateKind::channel_post, std::move(filter), std::move(handler), std::move(name));
}

Router& Router::on_callback_query(Filter filter, Handler handler, std::string name) {
  return on(updates::UpdateKind::callback_query, std::move(filter), std::move(handler), std::move(name));
}

Router& Router::on_callback_query(Handler handler, std::string name) {
  return on_callback_query(Filter(), std::move(handler), std::move(name));
}

Router& Router::on_inline_query(Filter filter, Handler handler, std::string name) {
  return on(updates::UpdateKind::inline_query, std::move(filter), std::move(handler), std::move(name));
}

Router& Router::on_my_chat_member(Filter filter, Handler handler, std::string name) {
  return on(updates::UpdateKind::my_chat_member, std::move(filter), std::move(handler), std::move(name));
}

Router& Router::on_chat_member(Filter filter, Handler handler, std::string name) {
  return on(updates::UpdateKind::chat_member, std::move(filter), std::move(handler), std::move(name));
}

Router& Router::include(Router child) {
  auto entry = std::make_shared<Entry>();
  entry->name = child.name_;
  entry->child = std::make_unique<const Router>(std::move(child));
  entries_.push_back(std::move(entry));
  return *this;
}

Router& Router::on_error(ErrorHook hook) {
  error_hook_ = std::move(hook);
  return *this;
}

Router& Router::use(Middleware middleware) {
  if (!middleware) {
    throw std::invalid_argument("Router::use: empty middleware in router " + name_);
  }
  middlewares_.push_back(std::move(middleware));
  return *this;
}

void Router::collect_kinds(std::vector<bool>& kinds) const {
  for (const auto& entry : entries_) {
    if (entry->child) {
      entry->child->collect_kinds(kinds);
    } else {
      kinds[static_cast<std::size_t>(entry->kind)] = true;
    }
  }
}

std::vector<std::string> Router::allowed_updates() const {
  std::vector<bool> kinds(updates::kUpdateKindCount, false);
  collect_kinds(kinds);
  std::vector<std::string> names;
  for (std::size_t i = 0; i + 1 < kinds.size(); ++i) {
    if (kinds[i]) {
      names.emplace_back(updates::to_string(static_cast<updates::UpdateKind>(i)));
    }
  }
  return names;
}

boost::asio::awaitable<bool> Router::route(Context& context) const {
  std::exception_ptr error;
  bool handled = false;
  try {
    handled = co_await route_with_middleware(context, 0);
  } catch (...) {
    if (!error_hook_) {
      throw;
    }
    error = std::current_exception();
  }
  // A coroutine cannot co_await inside a catch block, so the hook runs here.
  if (error) {
    // Built outside the co_await expression: g++ 12 may destroy temporaries
    // of such an expression twice (GCC PR 100611).
    boost::asio::awaitable<void> hook = error_hook_(context, std::move(error));
    co_await std::move(hook);
    co_return true;
  }
  co_return handled;
}

boost::asio::awaitable<bool> Router::route_with_middleware(Context& context, std::size_t index) const {
  if (index == middlewares_.size()) {
    co_return co_await route_entries(context);
  }
  bool handled = false;
  Next next = [this, &context, &handled, index]() -> boost::asio::awaitable<void> {
    handled = co_await route_with_middleware(context, index + 1);
  };
  boost::asio::awaitable<void> step = middlewares_[index](context, std::move(next));
  co_await std::move(step);
  co_return handled;
}

boost::asio::awaitable<bool> Router::route_entries(Context& context) const {
  for (const auto& entry : entries_) {
    if (entry->child) {
      const bool handled = co_await entry->child->route(context);
      if (handled) {
        co_return true;
      }
      continue;
    }
    if (entry->kind != context.kind() || !entry->filter(context)) {
      continue;
    }
    context.set_handler_name(entry->name);
    boost::asio::awaitable<void> run = entry->handler(context);
    co_await std::move(run);
    co_return true;
  }
  co_return false;
}

}  // namespace sluice::dispatch
