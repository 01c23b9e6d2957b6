#include <sluice/telegram/response.hpp>

#include <boost/json/object.hpp>

namespace sluice::telegram {
namespace {

constexpr std::string_view kRoot = "Response";

template <class T>
bool read_member(const boost::json::object& object, std::string_view key, T& out,
                 detail::ReadContext& context) {
  const boost::json::value* value = object.if_contains(key);
  if (value == nullptr) {
    return true;
  }
  if (!read_json(*value, out, context)) {
    return context.in_field(key);
  }
  return true;
}

}  // namespace

ResponseEnvelope parse_response_envelope(std::string_view body) {
  detail::ReadContext context;
  boost::json::value json;
  if (!detail::parse_text(body, {}, json, context)) {
    throw context.to_error(kRoot);
  }
  boost::json::object* object = json.if_object();
  if (object == nullptr) {
    context.fail_kind("object", json);
    throw context.to_error(kRoot);
  }

  ResponseEnvelope envelope;
  const boost::json::value* ok = object->if_contains("ok");
  if (ok == nullptr) {
    context.missing_field("ok");
    throw context.to_error(kRoot);
  }
  if (!read_json(*ok, envelope.ok, context)) {
    context.in_field("ok");
    throw context.to_error(kRoot);
  }
  if (!read_member(*object, "error_code", envelope.error_code, context) ||
      !read_member(*object, "description", envelope.description, context) ||
      !read_member(*object, "parameters", envelope.parameters, context)) {
    throw context.to_error(kRoot);
  }
  if (boost::json::value* result = object->if_contains("result")) {
    envelope.result = std::move(*result);
  }
  return envelope;
}

}  // namespace sluice::telegram
