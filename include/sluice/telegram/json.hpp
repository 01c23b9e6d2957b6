#pragma once

// JSON conversion of the generated Bot API types and requests.
//
//   parse_json<Update>(text)        text -> typed value; throws ParseError
//   try_parse_json(text, update)    the same, returning the error instead
//   from_json<Message>(json_value)  boost::json::value -> typed value
//   to_json(value), serialize_json(value)   typed value -> JSON
//
// Reading ignores keys it does not know (Telegram adds fields often),
// treats a missing or null optional field as std::nullopt, and fails with
// a ParseError naming the path of the offending value, for example
// "Update.message.chat.id: expected integer, got string". Integers must be
// JSON integers: 5.0 is rejected, because Telegram never sends one.
// Writing omits std::nullopt fields and empty Box fields.
//
// The overloads read_json / write_json are the conversion hooks that the
// generated code defines for every type; use the functions above instead.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <sluice/telegram/box.hpp>
#include <sluice/telegram/input_file.hpp>
#include <sluice/telegram/json_fwd.hpp>
#include <sluice/telegram/unknown_variant.hpp>

namespace sluice::telegram {

/// Deepest nesting of arrays and objects that parse_json accepts. Real
/// updates nest about 10 deep and rich messages some more; the limit keeps
/// the recursive reader's stack use small on hostile input.
inline constexpr std::size_t kMaxJsonDepth = 128;

/// JSON that does not match the expected Bot API type, or is not JSON.
///
/// what() is "<path>: <reason>", for example
/// "Update.message.chat.id: expected integer, got string".
class ParseError : public std::runtime_error {
 public:
  ParseError(std::string path, std::string reason);

  /// Location of the problem: the root type name followed by field names
  /// and array indices, "Update.message.entities[2].offset".
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// Cause of the problem, for example "missing required field".
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }

 private:
  std::string path_;
  std::string reason_;
};

namespace detail {

/// Error state of one read. Reading returns false on the first problem.
/// Each enclosing level then adds its field name or index on the way out,
/// so the success path does no path bookkeeping.
class ReadContext {
 public:
  /// Records `reason`; returns false for `return context.fail(...)`.
  bool fail(std::string reason);
  /// Records "expected <expected>, got <kind of actual>".
  bool fail_kind(std::string_view expected, const boost::json::value& actual);
  /// Records "missing required field" at `.name`.
  bool missing_field(std::string_view name);
  /// Records the first name in `required` whose bit is clear in `seen`.
  bool missing_field(std::span<const std::string_view> required, std::uint64_t seen);
  /// Records "unknown value \"<value>\"" at `.field`.
  bool unknown_value(std::string_view field, std::string_view value);

  /// Adds `.name` to the path of the recorded error; returns false.
  bool in_field(std::string_view name);
  /// Adds `[index]` to the path of the recorded error; returns false.
  bool in_index(std::size_t index);

  [[nodiscard]] ParseError to_error(std::string_view root) const;

 private:
  std::string reason_;
  std::vector<std::string> segments_;  // innermost first
};

/// Destination of the InputFile uploads met during a write.
class WriteContext {
 public:
  /// Plain JSON: an upload throws std::invalid_argument.
  WriteContext() = default;
  /// Request serialisation: uploads are appended to `uploads`.
  explicit WriteContext(std::vector<Upload>& uploads) : uploads_(&uploads) {}

  /// Records `file` as the part `part_name`.
  void add_upload(std::string part_name, const InputFile& file);
  /// Records `file` under a new part name and returns "attach://<name>".
  std::string attach(const InputFile& file);

 private:
  std::vector<Upload>* uploads_ = nullptr;
  std::size_t next_attachment_ = 0;
};

/// Parses `text` into `out`, allocating from `storage`. On a syntax error,
/// a nesting deeper than kMaxJsonDepth or invalid UTF-8 it records the
/// byte offset and the reason in `context` and returns false.
bool parse_text(std::string_view text, boost::json::storage_ptr storage, boost::json::value& out,
                ReadContext& context);

/// Fills `out` with the discriminator value and the serialised object.
bool read_unknown_variant(const boost::json::object& object, std::string_view discriminator,
                          UnknownVariant& out);

}  // namespace detail

// -- conversion hooks for primitives and containers --------------------------

bool read_json(const boost::json::value& json, std::int64_t& out, detail::ReadContext& context);
bool read_json(const boost::json::value& json, double& out, detail::ReadContext& context);
bool read_json(const boost::json::value& json, bool& out, detail::ReadContext& context);
bool read_json(const boost::json::value& json, std::string& out, detail::ReadContext& context);
template <class T>
bool read_json(const boost::json::value& json, std::vector<T>& out, detail::ReadContext& context);
template <class T>
bool read_json(const boost::json::value& json, std::optional<T>& out, detail::ReadContext& context);
template <class T>
bool read_json(const boost::json::value& json, Box<T>& out, detail::ReadContext& context);
template <class... Ts>
bool read_json(const boost::json::value& json, std::variant<Ts...>& out, detail::ReadContext& context);

void write_json(boost::json::value& json, std::int64_t in, detail::WriteContext& context);
void write_json(boost::json::value& json, double in, detail::WriteContext& context);
void write_json(boost::json::value& json, bool in, detail::WriteContext& context);
void write_json(boost::json::value& json, const std::string& in, detail::WriteContext& context);
template <class T>
void write_json(boost::json::value& json, const std::vector<T>& in, detail::WriteContext& context);
template <class T>
void write_json(boost::json::value& json, const std::optional<T>& in, detail::WriteContext& context);
template <class T>
void write_json(boost::json::value& json, const Box<T>& in, detail::WriteContext& context);
template <class... Ts>
void write_json(boost::json::value& json, const std::variant<Ts...>& in, detail::WriteContext& context);

namespace detail {

/// Whether a JSON value of this kind can hold a T; picks the alternative of
/// a plain std::variant (a method result such as "Message or True").
template <class T>
bool kind_matches(const boost::json::value& json) {
  if constexpr (std::same_as<T, std::int64_t>) {
    return json.is_int64() || json.is_uint64();
  } else if constexpr (std::same_as<T, double>) {
    return json.is_number();
  } else if constexpr (std::same_as<T, bool>) {
    return json.is_bool();
  } else if constexpr (std::same_as<T, std::string>) {
    return json.is_string();
  } else if constexpr (requires { typename T::value_type; typename T::allocator_type; }) {
    return json.is_array();
  } else {
    return json.is_object();
  }
}

template <class T>
constexpr std::string_view kind_name() {
  if constexpr (std::same_as<T, std::int64_t>) {
    return "integer";
  } else if constexpr (std::same_as<T, double>) {
    return "number";
  } else if constexpr (std::same_as<T, bool>) {
    return "boolean";
  } else if constexpr (std::same_as<T, std::string>) {
    return "string";
  } else if constexpr (requires { typename T::value_type; typename T::allocator_type; }) {
    return "array";
  } else {
    return "object";
  }
}

template <class T>
void write_member(boost::json::object& object, std::string_view key, const T& in,
                  WriteContext& context) {
  write_json(object[key], in, context);
}

template <class T>
void write_member(boost::json::object& object, std::string_view key, const std::optional<T>& in,
                  WriteContext& context) {
  if (in) {
    write_json(object[key], *in, context);
  }
}

template <class T>
void write_member(boost::json::object& object, std::string_view key, const Box<T>& in,
                  WriteContext& context) {
  if (in) {
    write_json(object[key], *in, context);
  }
}

/// A request field that is itself a file: an upload becomes the part named
/// after the field and the field stays out of the JSON.
void write_file_member(boost::json::object& object, std::string_view key, const InputFile& in,
                       WriteContext& context);
void write_file_member(boost::json::object& object, std::string_view key,
                       const std::optional<InputFile>& in, WriteContext& context);

template <class T>
constexpr std::string_view root_name() {
  if constexpr (requires { T::type_name; }) {
    return T::type_name;
  } else if constexpr (requires { T::method_name; }) {
    return T::method_name;
  } else {
    return "value";
  }
}

}  // namespace detail

namespace detail {

/// Reads a required field that is boxed because its type contains itself:
/// unlike an optional Box, null is not accepted as "absent".
template <class T>
bool read_required_box(const boost::json::value& json, Box<T>& out, ReadContext& context) {
  if (json.is_null()) {
    return context.fail_kind(kind_name<T>(), json);
  }
  return read_json(json, out.emplace(), context);
}

}  // namespace detail

template <class T>
bool read_json(const boost::json::value& json, std::vector<T>& out, detail::ReadContext& context) {
  const boost::json::array* array = json.if_array();
  if (array == nullptr) {
    return context.fail_kind("array", json);
  }
  out.clear();
  out.reserve(array->size());
  for (std::size_t i = 0; i < array->size(); ++i) {
    if (!read_json((*array)[i], out.emplace_back(), context)) {
      return context.in_index(i);
    }
  }
  return true;
}

template <class T>
bool read_json(const boost::json::value& json, std::optional<T>& out, detail::ReadContext& context) {
  // An explicit null is absent, as some serialisers write it.
  if (json.is_null()) {
    out.reset();
    return true;
  }
  return read_json(json, out.emplace(), context);
}

template <class T>
bool read_json(const boost::json::value& json, Box<T>& out, detail::ReadContext& context) {
  if (json.is_null()) {
    out.reset();
    return true;
  }
  return read_json(json, out.emplace(), context);
}

template <class... Ts>
bool read_json(const boost::json::value& json, std::variant<Ts...>& out, detail::ReadContext& context) {
  bool matched = false;
  bool ok = false;
  auto try_alternative = [&]<class T>(std::type_identity<T>) {
    if (!matched && detail::kind_matches<T>(json)) {
      matched = true;
      ok = read_json(json, out.template emplace<T>(), context);
    }
  };
  (try_alternative(std::type_identity<Ts>{}), ...);
  if (!matched) {
    std::string expected;
    ((expected += (expected.empty() ? "" : " or "), expected += detail::kind_name<Ts>()), ...);
    return context.fail_kind(expected, json);
  }
  return ok;
}

template <class T>
void write_json(boost::json::value& json, const std::vector<T>& in, detail::WriteContext& context) {
  boost::json::array& array = json.emplace_array();
  array.reserve(in.size());
  for (const T& element : in) {
    write_json(array.emplace_back(nullptr), element, context);
  }
}

template <class T>
void write_json(boost::json::value& json, const std::optional<T>& in, detail::WriteContext& context) {
  if (in) {
    write_json(json, *in, context);
  } else {
    json = nullptr;
  }
}

template <class T>
void write_json(boost::json::value& json, const Box<T>& in, detail::WriteContext& context) {
  if (in) {
    write_json(json, *in, context);
  } else {
    json = nullptr;
  }
}

template <class... Ts>
void write_json(boost::json::value& json, const std::variant<Ts...>& in, detail::WriteContext& context) {
  std::visit([&](const auto& alternative) { write_json(json, alternative, context); }, in);
}

// -- public interface ---------------------------------------------------------

/// Converts `json` into `out`. Returns the error instead of throwing it;
/// `out` is partly filled after an error. `root` starts the error path.
template <class T>
[[nodiscard]] std::optional<ParseError> try_from_json(const boost::json::value& json, T& out,
                                                      std::string_view root = detail::root_name<T>()) {
  detail::ReadContext context;
  if (!read_json(json, out, context)) {
    return context.to_error(root);
  }
  return std::nullopt;
}

/// Converts `json` into a T; throws ParseError.
template <class T>
[[nodiscard]] T from_json(const boost::json::value& json, std::string_view root = detail::root_name<T>()) {
  T out{};
  if (auto error = try_from_json(json, out, root)) {
    throw std::move(*error);
  }
  return out;
}

/// Parses JSON text into `out`; returns the error instead of throwing it.
/// The intermediate DOM lives in a monotonic arena, so a typical update
/// costs one allocation for the DOM besides the strings of `out`.
template <class T>
[[nodiscard]] std::optional<ParseError> try_parse_json(std::string_view text, T& out,
                                                       std::string_view root = detail::root_name<T>());

/// Parses JSON text into a T; throws ParseError.
template <class T>
[[nodiscard]] T parse_json(std::string_view text, std::string_view root = detail::root_name<T>()) {
  T out{};
  if (auto error = try_parse_json(text, out, root)) {
    throw std::move(*error);
  }
  return out;
}

/// Converts `in` into a JSON value. Throws std::invalid_argument when `in`
/// contains an InputFile upload (use serialize_request for requests with files).
template <class T>
[[nodiscard]] boost::json::value to_json(const T& in) {
  boost::json::value json;
  detail::WriteContext context;
  write_json(json, in, context);
  return json;
}

/// Converts `in` into JSON text; throws like to_json.
template <class T>
[[nodiscard]] std::string serialize_json(const T& in);

namespace detail {

/// Runs `read` on the DOM of `text`, held in a stack-backed arena.
bool parse_and_read(std::string_view text, ReadContext& context,
                    bool (*read)(const boost::json::value&, void*, ReadContext&), void* out);

std::string serialize_value(const boost::json::value& json);

}  // namespace detail

template <class T>
std::optional<ParseError> try_parse_json(std::string_view text, T& out, std::string_view root) {
  detail::ReadContext context;
  auto read = [](const boost::json::value& json, void* target, detail::ReadContext& ctx) {
    return read_json(json, *static_cast<T*>(target), ctx);
  };
  if (!detail::parse_and_read(text, context, read, &out)) {
    return context.to_error(root);
  }
  return std::nullopt;
}

template <class T>
std::string serialize_json(const T& in) {
  return detail::serialize_value(to_json(in));
}

}  // namespace sluice::telegram
