#include <sluice/redis/command.hpp>

#include <charconv>

namespace sluice::redis {
namespace {

void append_decimal(std::string& out, std::size_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

}  // namespace

Arguments& Arguments::arg(std::string_view value) {
  body_ += '$';
  append_decimal(body_, value.size());
  body_ += "\r\n";
  body_ += value;
  body_ += "\r\n";
  ++count_;
  return *this;
}

Arguments& Arguments::append(const Arguments& other) {
  body_ += other.body_;
  count_ += other.count_;
  return *this;
}

std::string_view Command::name() const noexcept {
  // The body starts with "$<length>\r\n<name>\r\n".
  const std::string& body = encoded_body();
  if (body.empty()) {
    return {};
  }
  std::size_t length = 0;
  const char* begin = body.data() + 1;
  auto [end, ec] = std::from_chars(begin, body.data() + body.size(), length);
  if (ec != std::errc()) {
    return {};
  }
  std::size_t offset = static_cast<std::size_t>(end - body.data()) + 2;
  return std::string_view(body).substr(offset, length);
}

void Command::encode_to(std::string& out) const {
  out += '*';
  append_decimal(out, size());
  out += "\r\n";
  out += encoded_body();
}

std::string Command::encode() const {
  std::string out;
  out.reserve(encoded_body().size() + 16);
  encode_to(out);
  return out;
}

}  // namespace sluice::redis
