#include <sluice/redis/error.hpp>
#include <sluice/redis/reply.hpp>

#include <string>
#include <utility>

namespace sluice::redis {
namespace {

[[noreturn]] void throw_unexpected(const Reply& reply, std::string_view expected) {
  if (reply.is_error()) {
    throw ServerError("command", reply.error_message());
  }
  throw Error(Errc::unexpected_reply, "redis reply: expected " + std::string(expected) + ", got " +
                                          reply.to_debug_string());
}

void append_debug(const Reply& reply, std::string& out) {
  switch (reply.kind()) {
    case ReplyKind::nil:
      out += "nil";
      return;
    case ReplyKind::integer:
      out += std::to_string(reply.as_integer());
      return;
    case ReplyKind::simple_string:
      out += '+';
      out += reply.as_string();
      return;
    case ReplyKind::bulk_string:
      out += '"';
      out += reply.as_string();
      out += '"';
      return;
    case ReplyKind::error:
      out += "(error) ";
      out += reply.error_message();
      return;
    case ReplyKind::array: {
      out += '[';
      bool first = true;
      for (const Reply& element : reply.as_array()) {
        if (!first) {
          out += ", ";
        }
        first = false;
        append_debug(element, out);
      }
      out += ']';
      return;
    }
  }
}

}  // namespace

std::string_view to_string(ReplyKind kind) noexcept {
  switch (kind) {
    case ReplyKind::nil:
      return "nil";
    case ReplyKind::integer:
      return "integer";
    case ReplyKind::simple_string:
      return "simple_string";
    case ReplyKind::bulk_string:
      return "bulk_string";
    case ReplyKind::error:
      return "error";
    case ReplyKind::array:
      return "array";
  }
  return "unknown";
}

Reply Reply::make_integer(std::int64_t value) {
  Reply reply;
  reply.kind_ = ReplyKind::integer;
  reply.integer_ = value;
  return reply;
}

Reply Reply::make_simple_string(std::string text) {
  Reply reply;
  reply.kind_ = ReplyKind::simple_string;
  reply.text_ = std::move(text);
  return reply;
}

Reply Reply::make_bulk_string(std::string text) {
  Reply reply;
  reply.kind_ = ReplyKind::bulk_string;
  reply.text_ = std::move(text);
  return reply;
}

Reply Reply::make_error(std::string message) {
  Reply reply;
  reply.kind_ = ReplyKind::error;
  reply.text_ = std::move(message);
  return reply;
}

Reply Reply::make_array(std::vector<Reply> elements) {
  Reply reply;
  reply.kind_ = ReplyKind::array;
  reply.elements_ = std::move(elements);
  return reply;
}

std::int64_t Reply::as_integer() const {
  if (!is_integer()) {
    throw_unexpected(*this, "an integer");
  }
  return integer_;
}

const std::string& Reply::as_string() const {
  if (!is_string()) {
    throw_unexpected(*this, "a string");
  }
  return text_;
}

std::string Reply::take_string() {
  if (!is_string()) {
    throw_unexpected(*this, "a string");
  }
  return std::move(text_);
}

std::optional<std::string> Reply::as_optional_string() const {
  if (is_nil()) {
    return std::nullopt;
  }
  return as_string();
}

const std::vector<Reply>& Reply::as_array() const {
  if (!is_array()) {
    throw_unexpected(*this, "an array");
  }
  return elements_;
}

std::vector<Reply>& Reply::as_array() {
  if (!is_array()) {
    throw_unexpected(*this, "an array");
  }
  return elements_;
}

std::string_view Reply::error_message() const noexcept {
  return is_error() ? std::string_view(text_) : std::string_view();
}

std::string_view Reply::error_code() const noexcept {
  std::string_view message = error_message();
  return message.substr(0, message.find(' '));
}

void Reply::throw_if_error(std::string_view command) const {
  if (is_error()) {
    throw ServerError(command, text_);
  }
}

std::string Reply::to_debug_string() const {
  std::string out;
  append_debug(*this, out);
  return out;
}

bool operator==(const Reply& a, const Reply& b) {
  if (a.kind_ != b.kind_) {
    return false;
  }
  switch (a.kind_) {
    case ReplyKind::nil:
      return true;
    case ReplyKind::integer:
      return a.integer_ == b.integer_;
    case ReplyKind::array:
      return a.elements_ == b.elements_;
    default:
      return a.text_ == b.text_;
  }
}

}  // namespace sluice::redis
