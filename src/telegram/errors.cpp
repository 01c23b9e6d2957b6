#include <sluice/telegram/errors.hpp>

#include <fmt/format.h>

#include <sluice/telegram/redact.hpp>

namespace sluice::telegram {
namespace {

std::string describe(const TelegramError::Fields& fields) {
  std::string text = fmt::format("Bot API method {} failed: ", fields.method);
  if (fields.error_code) {
    text += fmt::format("error_code={} ", *fields.error_code);
  } else {
    text += "no error_code ";
  }
  text += fmt::format("description=\"{}\"", fields.description);
  if (fields.retry_after) {
    text += fmt::format(" retry_after={}s", fields.retry_after->count());
  }
  if (fields.migrate_to_chat_id) {
    text += fmt::format(" migrate_to_chat_id={}", *fields.migrate_to_chat_id);
  }
  return text;
}

std::string describe(const NetworkError::Fields& fields) {
  std::string text = fmt::format("Bot API method {} failed in transport: ", fields.method);
  if (fields.http_status) {
    text += fmt::format("HTTP status {} without a Bot API reply", *fields.http_status);
  } else if (fields.kind) {
    text += http::to_string(*fields.kind);
  } else {
    text += "transport error";
  }
  if (fields.code) {
    text += fmt::format(" ({}: {})", fields.code.category().name(), fields.code.message());
  }
  if (!fields.detail.empty()) {
    text += fmt::format(": {}", fields.detail);
  }
  text += fields.maybe_delivered ? "; the request may have been delivered"
                                 : "; the request was not delivered";
  return text;
}

}  // namespace

BotApiError::BotApiError(std::string method, const std::string& message)
    : std::runtime_error(redact(message)), method_(std::move(method)) {}

TelegramError::TelegramError(Fields fields)
    : BotApiError(fields.method, describe(fields)),
      error_code_(fields.error_code),
      description_(redact(fields.description)),
      retry_after_(fields.retry_after),
      migrate_to_chat_id_(fields.migrate_to_chat_id) {}

NetworkError::NetworkError(Fields fields)
    : BotApiError(fields.method, describe(fields)),
      kind_(fields.kind),
      code_(fields.code),
      maybe_delivered_(fields.maybe_delivered),
      http_status_(fields.http_status) {}

ApiParseError::ApiParseError(std::string method, std::string path, std::string_view detail)
    : BotApiError(method, fmt::format("Bot API method {} returned an invalid reply at {}: {}",
                                      method, path, detail)),
      path_(std::move(path)) {}

}  // namespace sluice::telegram
