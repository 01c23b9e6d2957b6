#pragma once

// Serialisation of a request struct (SendMessage, SendPhoto, ...) for the
// wire. See <sluice/telegram/input_file.hpp> for how files are carried.

#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <sluice/telegram/input_file.hpp>
#include <sluice/telegram/json.hpp>

namespace sluice::telegram {

/// A request ready for the HTTP layer.
struct SerializedRequest {
  /// Bot API method name, for example "sendMessage" (static storage).
  std::string_view method{};
  /// Every field except top-level uploads; nested uploads appear as
  /// "attach://<part_name>" strings.
  boost::json::object fields{};
  /// File parts, in the order the fields were written.
  std::vector<Upload> uploads{};

  /// True when the request must be sent as multipart/form-data.
  [[nodiscard]] bool needs_multipart() const noexcept { return !uploads.empty(); }
};

/// Serialises `request` (a generated request struct) for sending.
template <class Request>
  requires requires { Request::method_name; }
[[nodiscard]] SerializedRequest serialize_request(const Request& request) {
  SerializedRequest out;
  out.method = Request::method_name;
  detail::WriteContext context(out.uploads);
  boost::json::value json;
  write_json(json, request, context);
  out.fields = std::move(json.as_object());
  return out;
}

}  // namespace sluice::telegram
