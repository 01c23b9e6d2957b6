#pragma once

// The kind of an Update: which of its optional fields is set.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <sluice/telegram/types_fwd.hpp>

namespace sluice::updates {

/// The field of an Update that carries its payload, in the order of
/// https://core.telegram.org/bots/api#update. `unknown` is an update with
/// none of the fields this version reads (a newer Bot API kind).
enum class UpdateKind : std::uint8_t {
  message,
  edited_message,
  channel_post,
  edited_channel_post,
  business_connection,
  business_message,
  edited_business_message,
  deleted_business_messages,
  guest_message,
  message_reaction,
  message_reaction_count,
  inline_query,
  chosen_inline_result,
  callback_query,
  shipping_query,
  pre_checkout_query,
  purchased_paid_media,
  poll,
  poll_answer,
  my_chat_member,
  chat_member,
  chat_join_request,
  chat_boost,
  removed_chat_boost,
  managed_bot,
  unknown,
};

/// Number of UpdateKind values, `unknown` included.
inline constexpr std::size_t kUpdateKindCount = static_cast<std::size_t>(UpdateKind::unknown) + 1;

/// Returns the kind of `update`: the first of its payload fields that is set.
UpdateKind kind_of(const telegram::Update& update) noexcept;

/// Returns the field name, as `allowed_updates` lists it ("message",
/// "callback_query", ...); "unknown" for UpdateKind::unknown.
std::string_view to_string(UpdateKind kind) noexcept;

/// The ordering group of an update: its chat, or the user it comes from
/// when it has no chat (inline queries, shipping queries, ...).
/// Updates with the same key are handled one at a time, in order.
struct OrderingKey {
  enum class Scope : std::uint8_t { chat, user };
  Scope scope = Scope::chat;
  std::int64_t id = 0;

  bool operator==(const OrderingKey&) const = default;
};

/// Returns the chat id of `update`, if its payload has a chat (a callback
/// query's chat is that of its message).
std::optional<std::int64_t> chat_id_of(const telegram::Update& update) noexcept;

/// Returns the message `update` carries when its kind is one of the message
/// kinds (message, edited_message, channel_post, ...), else nullptr.
const telegram::Message* message_of(const telegram::Update& update) noexcept;

/// Returns the id of the user who caused `update`, if there is one.
std::optional<std::int64_t> user_id_of(const telegram::Update& update) noexcept;

/// Returns the ordering key of `update`: its chat, else its user, else
/// std::nullopt (a poll update, for example), which is handled without
/// ordering against other updates.
std::optional<OrderingKey> ordering_key_of(const telegram::Update& update) noexcept;

}  // namespace sluice::updates
