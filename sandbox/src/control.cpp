// Sandbox: the control API under /sandbox/.

#include <charconv>
#include <stdexcept>

#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "engine_internal.hpp"
#include "sandbox_impl.hpp"

namespace sluice::sandbox {
namespace asio = boost::asio;

namespace {

// Default and longest wait of GET /sandbox/wait.
constexpr auto kDefaultWait = std::chrono::seconds(10);
constexpr double kMaxWaitSeconds = 600;

http::Reply control_ok(boost::json::value result) {
  return Sandbox::Impl::json_reply(200, ok_body(std::move(result), {}));
}

http::Reply control_error(unsigned status, std::string description) {
  boost::json::object body;
  body["ok"] = false;
  body["error_code"] = status;
  body["description"] = std::move(description);
  return Sandbox::Impl::json_reply(status, boost::json::serialize(body));
}

std::optional<std::int64_t> query_int(boost::json::object const& query, std::string_view name) {
  auto const* value = query.if_contains(name);
  if (value == nullptr || !value->is_string() || value->get_string().empty()) {
    return std::nullopt;
  }
  std::string_view text = value->get_string();
  std::int64_t number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || ptr != text.data() + text.size()) {
    throw std::invalid_argument("query parameter " + std::string(name) + " must be an integer, got \"" +
                                std::string(text) + "\"");
  }
  return number;
}

boost::json::array as_items(boost::json::value body) {
  if (body.is_array()) {
    return std::move(body.get_array());
  }
  boost::json::array items;
  items.push_back(std::move(body));
  return items;
}

std::int64_t field_int(boost::json::object const& object, std::string_view name) {
  auto const* value = object.if_contains(name);
  if (value == nullptr || value->is_null()) {
    return 0;
  }
  if (!value->is_int64() && !value->is_uint64()) {
    throw std::invalid_argument("field \"" + std::string(name) + "\" must be an integer");
  }
  return value->to_number<std::int64_t>();
}

}  // namespace

asio::awaitable<http::Reply> Sandbox::Impl::serve_wait(boost::json::object const& query) {
  auto const* condition = query.if_contains("condition");
  if (condition == nullptr || !condition->is_string() || condition->get_string().empty()) {
    co_return control_error(400, "query parameter condition is missing, e.g. condition=all_confirmed");
  }
  std::chrono::milliseconds timeout = kDefaultWait;
  if (auto const* text = query.if_contains("timeout"); text != nullptr && text->is_string()) {
    double seconds = 0;
    std::string_view digits = text->get_string();
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seconds);
    if (ec != std::errc{} || ptr != digits.data() + digits.size() || seconds < 0 || seconds > kMaxWaitSeconds) {
      co_return control_error(400, "query parameter timeout must be seconds between 0 and 600, got \"" +
                                       std::string(digits) + "\"");
    }
    timeout = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
  }
  std::string text(condition->get_string());
  bool met = false;
  try {
    met = co_await wait_for(text, timeout);
  } catch (std::invalid_argument const& error) {
    co_return control_error(400, error.what());
  }
  boost::json::object result;
  result["condition"] = text;
  result["met"] = met;
  result["stats"] = engine_.stats_json(Clock::now());
  if (!met) {
    boost::json::object body;
    body["ok"] = false;
    body["error_code"] = 408;
    body["description"] = "condition " + text + " not met within " + std::to_string(timeout.count()) + " ms";
    body["result"] = std::move(result);
    co_return json_reply(408, boost::json::serialize(body));
  }
  co_return control_ok(std::move(result));
}

asio::awaitable<http::Reply> Sandbox::Impl::serve_control(http::Request request, Route route) {
  auto const path = std::string(route.control_path);
  bool const is_post = request.method() == http::Verb::post;
  boost::json::object query;
  decode_form(route.query, query);

  try {
    if (path == "stats") {
      co_return control_ok(engine_.stats_json(Clock::now()));
    }
    if (path == "calls") {
      std::optional<std::string> method;
      if (auto const* value = query.if_contains("method"); value != nullptr && value->is_string() &&
                                                           !value->get_string().empty()) {
        method = std::string(value->get_string());
      }
      co_return control_ok(engine_.calls_json(method, query_int(query, "chat_id")));
    }
    if (path == "wait") {
      co_return co_await serve_wait(query);
    }
    if (path == "config" && !is_post) {
      co_return control_ok(engine_.config_json());
    }
    if (path == "shutdown") {
      if (!is_post) {
        co_return control_error(405, "use POST /sandbox/shutdown");
      }
      request_stop();
      co_return control_ok(true);
    }

    if (!is_post) {
      co_return control_error(404, "unknown control path /sandbox/" + path +
                                       "; see docs/sandbox.md for the control API");
    }
    boost::system::error_code ec;
    auto body = request.body().empty() ? boost::json::value(boost::json::object())
                                       : boost::json::parse(request.body(), ec);
    if (ec) {
      co_return control_error(400, "request body is not valid JSON: " + ec.message());
    }

    if (path == "config") {
      if (!body.is_object()) {
        co_return control_error(400, "config must be a JSON object");
      }
      engine_.apply_config(body.get_object());
      notify();
      co_return control_ok(engine_.config_json());
    }
    if (path == "updates") {
      boost::json::array ids;
      for (auto& item : as_items(std::move(body))) {
        if (!item.is_object()) {
          co_return control_error(400, "each update must be a JSON object");
        }
        auto id = engine_.push_update(std::move(item.get_object()), Clock::now());
        ids.push_back(id ? boost::json::value(*id) : boost::json::value(nullptr));
      }
      notify();
      co_return control_ok(std::move(ids));
    }
    if (path == "messages") {
      boost::json::array ids;
      for (auto const& item : as_items(std::move(body))) {
        if (!item.is_object()) {
          co_return control_error(400, "each message must be an object {\"from\", \"chat\", \"text\"}");
        }
        auto const& object = item.get_object();
        auto const* text = object.if_contains("text");
        if (text == nullptr || !text->is_string()) {
          co_return control_error(400, "message field \"text\" must be a string");
        }
        ids.push_back(engine_.push_user_message(field_int(object, "from"), field_int(object, "chat"),
                                                text->get_string(), Clock::now()));
      }
      notify();
      co_return control_ok(std::move(ids));
    }
    if (path == "callback_queries") {
      boost::json::array ids;
      for (auto const& item : as_items(std::move(body))) {
        if (!item.is_object()) {
          co_return control_error(400, "each callback query must be an object {\"from\", \"chat\", \"message_id\"}");
        }
        auto const& object = item.get_object();
        auto const user_id = field_int(object, "from");
        auto chat_id = field_int(object, "chat");
        if (chat_id == 0) {
          chat_id = user_id;
        }
        std::optional<std::int64_t> message_id;
        if (auto given = field_int(object, "message_id"); given != 0) {
          message_id = given;
        } else {
          message_id = engine_.last_bot_message_with_buttons(chat_id);
        }
        if (!message_id) {
          co_return control_error(400, "chat " + std::to_string(chat_id) +
                                           " has no bot message with a callback button; give message_id");
        }
        std::optional<std::string> data;
        if (auto const* value = object.if_contains("data"); value != nullptr && value->is_string()) {
          data = std::string(value->get_string());
        }
        ids.emplace_back(engine_.push_callback_query(user_id, chat_id, *message_id, data, Clock::now()));
      }
      notify();
      co_return control_ok(std::move(ids));
    }
    if (path == "block") {
      if (!body.is_object()) {
        co_return control_error(400, "block takes {\"user_id\": <id>}");
      }
      auto const user_id = field_int(body.get_object(), "user_id");
      if (engine_.find_user(user_id) == nullptr) {
        co_return control_error(400, "unknown user " + std::to_string(user_id));
      }
      engine_.block_bot(user_id, Clock::now());
      notify();
      co_return control_ok(true);
    }
  } catch (std::invalid_argument const& error) {
    co_return control_error(400, error.what());
  }
  co_return control_error(404, "unknown control path /sandbox/" + path + "; see docs/sandbox.md for the control API");
}

}  // namespace sluice::sandbox
