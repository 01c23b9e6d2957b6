#pragma once

// Bot API calls that travel in the reply to Telegram's webhook request.

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <sluice/dispatch/context.hpp>
#include <sluice/telegram/bot_api.hpp>
#include <sluice/telegram/request.hpp>

namespace sluice::dispatch {

/// Makes `request` (a request struct such as telegram::SendMessage) travel
/// in the reply to the webhook request that delivered the update, when the
/// update came by webhook and no other call took that place yet. Telegram
/// then makes the call, and the bot saves a request of its own
/// (https://core.telegram.org/bots/api#making-requests-when-getting-updates).
/// Otherwise (long polling, a second call, a file upload) it calls the
/// BotApi and waits for the call to finish.
///
///     co_await call_in_webhook_reply(ctx, telegram::SendMessage{.chat_id = id, .text = "hi"});
///
/// Nothing is returned either way: Telegram reports no result for a call
/// in a webhook reply, and it makes the call only after the handler
/// returns. An error there (a 429, 403 or 400) loses the call without a
/// trace. Use it for a handler's last call whose result is not needed.
/// The call takes its flood-control budget before it is stored, like any
/// call. Errors: those of BotApi::call, and of FloodGate::wait.
template <class Request>
boost::asio::awaitable<void> call_in_webhook_reply(const Context& context, Request request) {
  if (context.can_reply_by_webhook()) {
    telegram::SerializedRequest serialized = telegram::serialize_request(request);
    if (!serialized.needs_multipart()) {
      co_await context.api().take_flood_budget(request);
      serialized.fields["method"] = serialized.method;
      if (context.offer_webhook_reply(boost::json::serialize(serialized.fields))) {
        co_return;
      }
    }
  }
  co_await context.api().call(std::move(request));
}

}  // namespace sluice::dispatch
