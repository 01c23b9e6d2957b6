#include <sluice/telegram/chat_id.hpp>

#include <sluice/telegram/json.hpp>

namespace sluice::telegram {

bool read_json(const boost::json::value& json, ChatId& out, detail::ReadContext& context) {
  if (json.is_string()) {
    const boost::json::string& username = json.get_string();
    out = ChatId(std::string_view(username.data(), username.size()));
    return true;
  }
  std::int64_t id = 0;
  if (json.is_int64() || json.is_uint64()) {
    if (!read_json(json, id, context)) {
      return false;
    }
    out = ChatId(id);
    return true;
  }
  return context.fail_kind("integer or string", json);
}

void write_json(boost::json::value& json, const ChatId& in, detail::WriteContext& /*context*/) {
  if (auto id = in.id()) {
    json = *id;
  } else {
    json = in.username();
  }
}

}  // namespace sluice::telegram
