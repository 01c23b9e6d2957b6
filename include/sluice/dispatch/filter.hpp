#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::dispatch {

class Context;

/// A condition on the update being handled. Filters compose with `&&`,
/// `||` and `!`; a default-constructed Filter matches every update.
///
///     using namespace sluice::dispatch::filters;
///     router.on_message(chat_type("private") && !text_equals("/help"), handler);
///
/// A filter runs on the event loop before any handler and must not block.
class Filter {
 public:
  using Predicate = std::function<bool(const Context&)>;

  /// Matches every update.
  Filter() = default;
  /// Matches when `predicate` returns true.
  Filter(Predicate predicate);  // NOLINT(google-explicit-constructor)

  bool operator()(const Context& context) const;

  friend Filter operator&&(Filter left, Filter right);
  friend Filter operator||(Filter left, Filter right);
  friend Filter operator!(Filter filter);

 private:
  // Shared so that copies of a composed filter do not copy the tree.
  std::shared_ptr<const Predicate> predicate_;
};

/// Ready-made filters.
namespace filters {

/// Every update.
Filter any();
/// A message whose text starts with the command `name` (without "/"),
/// with no "@" suffix or this bot's username as suffix. Case-sensitive,
/// as Telegram's command menu is.
Filter command(std::string name);
/// Any bot command addressed to this bot.
Filter any_command();
/// A message text (or caption) equal to `text`.
Filter text_equals(std::string text);
/// A message text (or caption) that `pattern` (ECMAScript syntax) matches
/// anywhere; throws std::regex_error for an invalid pattern.
Filter text_matches(const std::string& pattern);
/// A message with a text (not only a caption).
Filter has_text();
/// A callback query whose data equals `data`.
Filter callback_data_equals(std::string data);
/// A callback query whose data starts with `prefix`.
Filter callback_data_prefix(std::string prefix);
/// An update whose chat has one of these types ("private", "group",
/// "supergroup", "channel").
Filter chat_type(std::string type);
Filter chat_types(std::vector<std::string> types);
/// An update from one of these user ids.
Filter from_users(std::vector<std::int64_t> user_ids);
/// An update in one of these chats.
Filter chat_ids(std::vector<std::int64_t> chat_ids);
/// An update whose conversation is in the state `name` (see
/// Context::state). False when the bot has no fsm_storage.
Filter in_state(std::string name);
/// An update whose conversation is in some state.
Filter any_state();
/// An update whose conversation is in no state, or that has no
/// conversation.
Filter no_state();

}  // namespace filters

}  // namespace sluice::dispatch
