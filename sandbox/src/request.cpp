#include <sluice/sandbox/request.hpp>

#include <charconv>
#include <stdexcept>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "multipart.hpp"

namespace sluice::sandbox {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view media_type(std::string_view content_type) {
  auto end = content_type.find(';');
  auto type = content_type.substr(0, end);
  while (!type.empty() && type.back() == ' ') {
    type.remove_suffix(1);
  }
  return type;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') {
      x = static_cast<char>(x - 'A' + 'a');
    }
    if (y >= 'A' && y <= 'Z') {
      y = static_cast<char>(y - 'A' + 'a');
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

}  // namespace

Route parse_target(std::string_view target) {
  Route route;
  auto question = target.find('?');
  auto path = target.substr(0, question);
  if (question != std::string_view::npos) {
    route.query = target.substr(question + 1);
  }

  constexpr std::string_view kControlPrefix = "/sandbox/";
  if (path.starts_with(kControlPrefix)) {
    route.kind = RouteKind::control;
    route.control_path = path.substr(kControlPrefix.size());
    return route;
  }
  constexpr std::string_view kBotPrefix = "/bot";
  if (!path.starts_with(kBotPrefix)) {
    return route;
  }
  auto rest = path.substr(kBotPrefix.size());
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return route;
  }
  route.token = rest.substr(0, slash);
  route.method = rest.substr(slash + 1);
  if (route.method.empty() || route.method.find('/') != std::string_view::npos) {
    return route;
  }
  route.kind = RouteKind::bot_api;
  return route;
}

void decode_form(std::string_view form, boost::json::object& params) {
  while (!form.empty()) {
    auto amp = form.find('&');
    auto pair = form.substr(0, amp);
    form = amp == std::string_view::npos ? std::string_view{} : form.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    auto eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
    if (name.empty()) {
      continue;
    }
    params[name] = value;
  }
}

std::variant<ApiRequest, RequestError> parse_api_request(Route const& route, std::string_view content_type,
                                                         std::string_view body) {
  ApiRequest request;
  request.token = std::string(route.token);
  request.method = std::string(route.method);
  decode_form(route.query, request.params);

  auto type = media_type(content_type);
  if (body.empty()) {
    return request;
  }
  if (iequals(type, "application/json")) {
    boost::system::error_code ec;
    auto value = boost::json::parse(body, ec);
    if (ec || !value.is_object()) {
      return RequestError{400, "Bad Request: can't parse JSON object"};
    }
    if (request.params.empty()) {
      // The usual case: no query parameters to merge, so the parsed object
      // becomes the parameters without copying its keys or rehashing.
      request.params = std::move(value.get_object());
      return request;
    }
    for (auto& [key, field] : value.get_object()) {
      request.params[key] = std::move(field);
    }
    return request;
  }
  if (iequals(type, "application/x-www-form-urlencoded")) {
    decode_form(body, request.params);
    return request;
  }
  if (iequals(type, "multipart/form-data")) {
    auto parts = parse_multipart_form(content_type, body);
    if (!parts) {
      return RequestError{400, "Bad Request: can't parse multipart/form-data request"};
    }
    for (auto& part : *parts) {
      if (part.filename.has_value()) {
        request.files[part.name] = UploadedFile{
            .filename = std::move(*part.filename),
            .content_type = std::move(part.content_type),
            .data = std::move(part.data),
        };
      } else {
        request.params[part.name] = std::move(part.data);
      }
    }
    return request;
  }
  return request;
}

bool Params::has(std::string_view name) const {
  auto const* value = params_.if_contains(name);
  return value != nullptr && !value->is_null();
}

std::optional<std::int64_t> Params::integer(std::string_view name) const {
  auto const* value = params_.if_contains(name);
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (value->is_int64()) {
    return value->get_int64();
  }
  if (value->is_uint64()) {
    return static_cast<std::int64_t>(value->get_uint64());
  }
  if (value->is_double()) {
    return static_cast<std::int64_t>(value->get_double());
  }
  if (value->is_bool()) {
    return value->get_bool() ? 1 : 0;
  }
  if (value->is_string()) {
    std::string_view text = value->get_string();
    while (!text.empty() && text.front() == ' ') {
      text.remove_prefix(1);
    }
    if (text.empty()) {
      return std::nullopt;
    }
    std::int64_t result = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), result);
    if (ec != std::errc{}) {
      return 0;
    }
    (void)ptr;
    return result;
  }
  return 0;
}

std::optional<std::string> Params::text(std::string_view name) const {
  auto const* value = params_.if_contains(name);
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (value->is_string()) {
    return std::string(value->get_string());
  }
  return boost::json::serialize(*value);
}

bool Params::boolean(std::string_view name) const {
  auto const* value = params_.if_contains(name);
  if (value == nullptr || value->is_null()) {
    return false;
  }
  if (value->is_bool()) {
    return value->get_bool();
  }
  if (value->is_int64()) {
    return value->get_int64() != 0;
  }
  if (value->is_string()) {
    std::string_view text = value->get_string();
    return text == "true" || text == "True" || text == "1";
  }
  return false;
}

std::optional<boost::json::value> Params::json(std::string_view name) const {
  auto const* value = params_.if_contains(name);
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (!value->is_string()) {
    return *value;
  }
  std::string_view text = value->get_string();
  if (text.empty()) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto parsed = boost::json::parse(text, ec);
  if (ec) {
    throw std::invalid_argument("parameter " + std::string(name) + " is not valid JSON");
  }
  return parsed;
}

}  // namespace sluice::sandbox
