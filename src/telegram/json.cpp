#include <sluice/telegram/json.hpp>

#include <array>
#include <cstddef>
#include <limits>
#include <string>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

namespace sluice::telegram {
namespace {

// Longest part of an unknown discriminator value quoted in an error; the
// value comes from the network and may be megabytes long.
constexpr std::size_t kQuotedValueLength = 64;

// Stack space for the DOM of one parse. A typical update (1-3 KB of text)
// fits, so the arena asks the heap for nothing; larger inputs spill over.
constexpr std::size_t kArenaBytes = 16 * 1024;

// Stack space for Boost.JSON's parser state (its depth stack), the size
// boost::json::parse itself uses.
constexpr std::size_t kParserBytes = BOOST_JSON_STACK_BUFFER_SIZE;

std::string_view kind_of(const boost::json::value& json) {
  switch (json.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
      return "integer";
    case boost::json::kind::double_:
      return "non-integer number";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "unknown";
}

std::string quote(std::string_view value) {
  std::string quoted = "\"";
  quoted += value.substr(0, kQuotedValueLength);
  quoted += value.size() > kQuotedValueLength ? "...\"" : "\"";
  return quoted;
}

}  // namespace

ParseError::ParseError(std::string path, std::string reason)
    : std::runtime_error(path + ": " + reason), path_(std::move(path)), reason_(std::move(reason)) {}

namespace detail {

bool ReadContext::fail(std::string reason) {
  reason_ = std::move(reason);
  segments_.clear();
  return false;
}

bool ReadContext::fail_kind(std::string_view expected, const boost::json::value& actual) {
  std::string reason = "expected ";
  reason += expected;
  reason += ", got ";
  reason += kind_of(actual);
  return fail(std::move(reason));
}

bool ReadContext::missing_field(std::string_view name) {
  fail("missing required field");
  return in_field(name);
}

bool ReadContext::missing_field(std::span<const std::string_view> required, std::uint64_t seen) {
  for (std::size_t i = 0; i < required.size(); ++i) {
    if ((seen & (std::uint64_t{1} << i)) == 0) {
      return missing_field(required[i]);
    }
  }
  return fail("missing required field");
}

bool ReadContext::unknown_value(std::string_view field, std::string_view value) {
  fail("unknown value " + quote(value));
  return in_field(field);
}

bool ReadContext::in_field(std::string_view name) {
  std::string segment = ".";
  segment += name;
  segments_.push_back(std::move(segment));
  return false;
}

bool ReadContext::in_index(std::size_t index) {
  segments_.push_back("[" + std::to_string(index) + "]");
  return false;
}

ParseError ReadContext::to_error(std::string_view root) const {
  std::string path(root);
  for (auto it = segments_.rbegin(); it != segments_.rend(); ++it) {
    path += *it;
  }
  return ParseError(std::move(path), reason_.empty() ? std::string("invalid value") : reason_);
}

void WriteContext::add_upload(std::string part_name, const InputFile& file) {
  if (uploads_ == nullptr) {
    throw std::invalid_argument(
        "InputFile upload '" + file.filename() +
        "' cannot be written as plain JSON; send the request with serialize_request");
  }
  uploads_->push_back(Upload{.part_name = std::move(part_name), .file = file});
}

std::string WriteContext::attach(const InputFile& file) {
  std::string name = "file" + std::to_string(next_attachment_++);
  add_upload(name, file);
  return "attach://" + name;
}

bool parse_text(std::string_view text, boost::json::storage_ptr storage, boost::json::value& out,
                ReadContext& context) {
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  alignas(std::max_align_t) std::array<unsigned char, kParserBytes> parser_buffer;
  boost::json::parser parser(boost::json::storage_ptr(), options, parser_buffer.data(),
                             parser_buffer.size());
  parser.reset(std::move(storage));

  boost::system::error_code ec;
  const std::size_t consumed = parser.write_some(text.data(), text.size(), ec);
  if (!ec && consumed < text.size()) {
    ec = boost::json::error::extra_data;
  }
  if (ec) {
    return context.fail("invalid JSON at byte " + std::to_string(consumed) + ": " + ec.message());
  }
  out = parser.release();
  return true;
}

bool parse_and_read(std::string_view text, ReadContext& context,
                    bool (*read)(const boost::json::value&, void*, ReadContext&), void* out) {
  alignas(std::max_align_t) std::array<unsigned char, kArenaBytes> arena_buffer;
  boost::json::monotonic_resource arena(arena_buffer.data(), arena_buffer.size());
  boost::json::value json;
  if (!parse_text(text, &arena, json, context)) {
    return false;
  }
  return read(json, out, context);
}

bool read_unknown_variant(const boost::json::object& object, std::string_view discriminator,
                          UnknownVariant& out) {
  out.discriminator.assign(discriminator.data(), discriminator.size());
  out.json = boost::json::serialize(object);
  return true;
}

std::string serialize_value(const boost::json::value& json) {
  return boost::json::serialize(json);
}

void write_file_member(boost::json::object& object, std::string_view key, const InputFile& in,
                       WriteContext& context) {
  if (in.is_upload()) {
    context.add_upload(std::string(key), in);
    return;
  }
  object[key] = in.json_string();
}

void write_file_member(boost::json::object& object, std::string_view key,
                       const std::optional<InputFile>& in, WriteContext& context) {
  if (in) {
    write_file_member(object, key, *in, context);
  }
}

}  // namespace detail

bool read_json(const boost::json::value& json, std::int64_t& out, detail::ReadContext& context) {
  if (const auto* value = json.if_int64()) {
    out = *value;
    return true;
  }
  if (const auto* value = json.if_uint64()) {
    if (*value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return context.fail("integer " + std::to_string(*value) + " does not fit in int64");
    }
    out = static_cast<std::int64_t>(*value);
    return true;
  }
  return context.fail_kind("integer", json);
}

bool read_json(const boost::json::value& json, double& out, detail::ReadContext& context) {
  if (const auto* value = json.if_double()) {
    out = *value;
    return true;
  }
  if (const auto* value = json.if_int64()) {
    out = static_cast<double>(*value);
    return true;
  }
  if (const auto* value = json.if_uint64()) {
    out = static_cast<double>(*value);
    return true;
  }
  return context.fail_kind("number", json);
}

bool read_json(const boost::json::value& json, bool& out, detail::ReadContext& context) {
  if (const auto* value = json.if_bool()) {
    out = *value;
    return true;
  }
  return context.fail_kind("boolean", json);
}

bool read_json(const boost::json::value& json, std::string& out, detail::ReadContext& context) {
  if (const auto* value = json.if_string()) {
    out.assign(value->data(), value->size());
    return true;
  }
  return context.fail_kind("string", json);
}

void write_json(boost::json::value& json, std::int64_t in, detail::WriteContext& /*context*/) {
  json = in;
}

void write_json(boost::json::value& json, double in, detail::WriteContext& /*context*/) {
  json = in;
}

void write_json(boost::json::value& json, bool in, detail::WriteContext& /*context*/) {
  json = in;
}

void write_json(boost::json::value& json, const std::string& in, detail::WriteContext& /*context*/) {
  json = std::string_view(in);
}

void write_json(boost::json::value& json, const UnknownVariant& in, detail::WriteContext& /*context*/) {
  json = boost::json::parse(in.json, json.storage());
}

}  // namespace sluice::telegram
