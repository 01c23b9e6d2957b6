#include <sluice/telegram/bot_api_response.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/parse.hpp>
#include <fmt/format.h>

namespace sluice::telegram {
namespace {

// Longest piece of a non-JSON body quoted in an error message.
constexpr std::size_t kQuotedBodyLength = 120;

std::string quote_body(std::string_view body) {
  std::string quoted(body.substr(0, kQuotedBodyLength));
  for (char& c : quoted) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    }
  }
  if (body.size() > kQuotedBodyLength) {
    quoted += "...";
  }
  return quoted;
}

std::optional<std::int64_t> integer_member(const boost::json::object& object,
                                           std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr) {
    return std::nullopt;
  }
  if (const auto* i = value->if_int64()) {
    return *i;
  }
  if (const auto* u = value->if_uint64(); u != nullptr && *u <= INT64_MAX) {
    return static_cast<std::int64_t>(*u);
  }
  return std::nullopt;
}

}  // namespace

boost::json::value parse_reply(std::string_view method, int http_status, std::string_view body,
                               boost::json::storage_ptr storage) {
  boost::system::error_code ec;
  boost::json::value reply = boost::json::parse(body, ec, std::move(storage));
  if (!ec && reply.is_object()) {
    return reply;
  }

  if (http_status != 200) {
    throw NetworkError({
        .method = std::string(method),
        .code = {},
        .maybe_delivered = http_status >= 500,
        .http_status = http_status,
        .detail = fmt::format("body \"{}\"", quote_body(body)),
    });
  }
  throw ApiParseError(std::string(method), "$",
                      ec ? fmt::format("not JSON ({}): \"{}\"", ec.message(), quote_body(body))
                         : std::string("not a JSON object"));
}

TelegramError telegram_error_from_reply(std::string_view method,
                                        const boost::json::object& reply) {
  TelegramError::Fields fields{.method = std::string(method)};

  if (auto code = integer_member(reply, "error_code")) {
    fields.error_code = static_cast<int>(*code);
  }
  if (const auto* description = reply.if_contains("description");
      description != nullptr && description->is_string()) {
    fields.description = std::string(description->get_string());
  }
  if (const auto* parameters = reply.if_contains("parameters");
      parameters != nullptr && parameters->is_object()) {
    const auto& object = parameters->get_object();
    if (auto seconds = integer_member(object, "retry_after"); seconds && *seconds >= 0) {
      fields.retry_after = std::chrono::seconds(*seconds);
    }
    fields.migrate_to_chat_id = integer_member(object, "migrate_to_chat_id");
  }
  return TelegramError(std::move(fields));
}

const boost::json::value& reply_result(std::string_view method, const boost::json::value& reply) {
  if (!reply.is_object()) {
    throw ApiParseError(std::string(method), "$", "reply is not a JSON object");
  }
  const auto& object = reply.get_object();
  const auto* ok = object.if_contains("ok");
  if (ok == nullptr || !ok->is_bool()) {
    throw ApiParseError(std::string(method), "ok",
                        ok == nullptr ? "member is missing" : "member is not a boolean");
  }

  if (!ok->get_bool()) {
    throw telegram_error_from_reply(method, object);
  }
  const auto* result = object.if_contains("result");
  if (result == nullptr) {
    throw ApiParseError(std::string(method), "result", "member is missing from an ok reply");
  }
  return *result;
}

}  // namespace sluice::telegram
