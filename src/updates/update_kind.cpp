#include <sluice/updates/update_kind.hpp>

#include <array>
#include <variant>

#include <sluice/telegram/update.hpp>

namespace sluice::updates {

namespace {

constexpr std::array<std::string_view, kUpdateKindCount> kKindNames = {
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "guest_message",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "managed_bot",
    "unknown",
};

}  // namespace

const telegram::Message* message_of(const telegram::Update& update) noexcept {
  for (const telegram::Box<telegram::Message>* field :
       {&update.message, &update.edited_message, &update.channel_post, &update.edited_channel_post,
        &update.business_message, &update.edited_business_message, &update.guest_message}) {
    if (field->has_value()) {
      return &**field;
    }
  }
  return nullptr;
}

UpdateKind kind_of(const telegram::Update& update) noexcept {
  using enum UpdateKind;
  if (update.message) return message;
  if (update.edited_message) return edited_message;
  if (update.channel_post) return channel_post;
  if (update.edited_channel_post) return edited_channel_post;
  if (update.business_connection) return business_connection;
  if (update.business_message) return business_message;
  if (update.edited_business_message) return edited_business_message;
  if (update.deleted_business_messages) return deleted_business_messages;
  if (update.guest_message) return guest_message;
  if (update.message_reaction) return message_reaction;
  if (update.message_reaction_count) return message_reaction_count;
  if (update.inline_query) return inline_query;
  if (update.chosen_inline_result) return chosen_inline_result;
  if (update.callback_query) return callback_query;
  if (update.shipping_query) return shipping_query;
  if (update.pre_checkout_query) return pre_checkout_query;
  if (update.purchased_paid_media) return purchased_paid_media;
  if (update.poll) return poll;
  if (update.poll_answer) return poll_answer;
  if (update.my_chat_member) return my_chat_member;
  if (update.chat_member) return chat_member;
  if (update.chat_join_request) return chat_join_request;
  if (update.chat_boost) return chat_boost;
  if (update.removed_chat_boost) return removed_chat_boost;
  if (update.managed_bot) return managed_bot;
  return unknown;
}

std::string_view to_string(UpdateKind kind) noexcept {
  const auto index = static_cast<std::size_t>(kind);
  return index < kKindNames.size() ? kKindNames[index] : std::string_view("unknown");
}

std::optional<std::int64_t> chat_id_of(const telegram::Update& update) noexcept {
  if (const telegram::Message* message = message_of(update)) {
    return message->chat.id;
  }
  if (update.callback_query && update.callback_query->message) {
    return std::visit([](const auto& message) { return message.chat.id; },
                      static_cast<const telegram::MaybeInaccessibleMessage::Variant&>(
                          *update.callback_query->message));
  }
  if (update.deleted_business_messages) return update.deleted_business_messages->chat.id;
  if (update.message_reaction) return update.message_reaction->chat.id;
  if (update.message_reaction_count) return update.message_reaction_count->chat.id;
  if (update.my_chat_member) return update.my_chat_member->chat.id;
  if (update.chat_member) return update.chat_member->chat.id;
  if (update.chat_join_request) return update.chat_join_request->chat.id;
  if (update.chat_boost) return update.chat_boost->chat.id;
  if (update.removed_chat_boost) return update.removed_chat_boost->chat.id;
  return std::nullopt;
}

std::optional<std::int64_t> user_id_of(const telegram::Update& update) noexcept {
  if (const telegram::Message* message = message_of(update)) {
    if (message->from) {
      return message->from->id;
    }
    return std::nullopt;
  }
  if (update.callback_query) return update.callback_query->from.id;
  if (update.inline_query) return update.inline_query->from.id;
  if (update.chosen_inline_result) return update.chosen_inline_result->from.id;
  if (update.shipping_query) return update.shipping_query->from.id;
  if (update.pre_checkout_query) return update.pre_checkout_query->from.id;
  if (update.purchased_paid_media) return update.purchased_paid_media->from.id;
  if (update.business_connection) return update.business_connection->user.id;
  if (update.poll_answer && update.poll_answer->user) return update.poll_answer->user->id;
  if (update.message_reaction && update.message_reaction->user) {
    return update.message_reaction->user->id;
  }
  if (update.my_chat_member) return update.my_chat_member->from.id;
  if (update.chat_member) return update.chat_member->from.id;
  if (update.chat_join_request) return update.chat_join_request->from.id;
  if (update.managed_bot) return update.managed_bot->user.id;
  return std::nullopt;
}

std::optional<OrderingKey> ordering_key_of(const telegram::Update& update) noexcept {
  if (auto chat = chat_id_of(update)) {
    return OrderingKey{.scope = OrderingKey::Scope::chat, .id = *chat};
  }
  if (auto user = user_id_of(update)) {
    return OrderingKey{.scope = OrderingKey::Scope::user, .id = *user};
  }
  return std::nullopt;
}

}  // namespace sluice::updates
