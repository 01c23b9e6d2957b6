#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace sluice::sandbox {

/// A file part of a multipart/form-data request.
struct UploadedFile {
  std::string filename;
  std::string content_type;
  std::string data;
};

/// A Bot API call after routing and body decoding.
struct ApiRequest {
  /// The token from the `/bot<token>/` path segment.
  std::string token;
  /// The method name as written in the URL (Telegram matches it
  /// case-insensitively).
  std::string method;
  /// Parameters: strings for query, form and multipart fields, any JSON
  /// value for an application/json body. Body fields override query fields.
  boost::json::object params;
  /// Multipart file parts by field name.
  std::map<std::string, UploadedFile, std::less<>> files;
};

/// Which part of the sandbox a request target addresses.
enum class RouteKind {
  /// `/bot<token>/<method>`.
  bot_api,
  /// `/sandbox/<path>`, the control API.
  control,
  /// Anything else; Telegram answers 404 "Not Found".
  not_found,
};

struct Route {
  RouteKind kind = RouteKind::not_found;
  std::string_view token;
  std::string_view method;
  /// For `control`: the path after "/sandbox/".
  std::string_view control_path;
  /// The query string without '?', possibly empty.
  std::string_view query;
};

/// Splits an HTTP request target into its route.
Route parse_target(std::string_view target);

/// A request Telegram rejects before looking at the method: the HTTP status
/// and the description of its JSON error reply.
struct RequestError {
  unsigned status = 400;
  std::string description;
};

/// Decodes a URL-encoded query or form body into string parameters
/// ('+' is a space). Later duplicates overwrite earlier ones.
void decode_form(std::string_view form, boost::json::object& params);

/// Decodes the parameters of a Bot API request from its query string and
/// body. Supports application/json, application/x-www-form-urlencoded and
/// multipart/form-data bodies; other content types are ignored, as Telegram
/// does.
std::variant<ApiRequest, RequestError> parse_api_request(Route const& route, std::string_view content_type,
                                                         std::string_view body);

/// Read access to request parameters with the lenient conversions Telegram
/// applies (numbers given as strings, booleans as "true"/"1", JSON objects
/// given as serialized strings).
class Params {
 public:
  explicit Params(boost::json::object const& params) : params_(params) {}

  bool has(std::string_view name) const;

  /// Returns the value as an integer; nullopt when absent or empty. A value
  /// that is not a number yields 0, as Telegram's parser does.
  std::optional<std::int64_t> integer(std::string_view name) const;

  /// Returns the value as text; numbers and booleans are converted.
  std::optional<std::string> text(std::string_view name) const;

  /// Returns true for true, "true", "1" and non-zero numbers.
  bool boolean(std::string_view name) const;

  /// Returns the value as a JSON value: objects and arrays as they are, a
  /// string parsed as JSON. Returns nullopt when absent; throws
  /// std::invalid_argument when a string does not parse.
  std::optional<boost::json::value> json(std::string_view name) const;

  boost::json::object const& raw() const { return params_; }

 private:
  boost::json::object const& params_;
};

}  // namespace sluice::sandbox
