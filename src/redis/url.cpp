#include <sluice/redis/error.hpp>
#include <sluice/redis/url.hpp>

#include <charconv>
#include <string>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace sluice::redis {
namespace {

[[noreturn]] void throw_invalid(std::string_view url, std::string_view reason) {
  throw Error(Errc::invalid_url, "invalid Redis URL \"" + redact_url(url) + "\": " + std::string(reason));
}

int parse_database(std::string_view url, std::string_view path) {
  if (path.empty() || path == "/") {
    return 0;
  }
  std::string_view digits = path.substr(1);
  int database = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), database);
  if (ec != std::errc() || end != digits.data() + digits.size() || database < 0) {
    throw_invalid(url, "the path must be a database number such as /0");
  }
  return database;
}

std::uint16_t parse_port(std::string_view url, std::string_view digits) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value == 0 ||
      value > 65535) {
    throw_invalid(url, "the port must be a number from 1 to 65535");
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::string ServerAddress::endpoint() const {
  std::string out;
  if (host.find(':') != std::string::npos) {
    out = "[" + host + "]";
  } else {
    out = host;
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

ServerAddress parse_url(std::string_view url) {
  auto parsed = boost::urls::parse_uri(boost::core::string_view(url.data(), url.size()));
  if (!parsed) {
    throw_invalid(url, "not a URL; expected redis://[[user]:password@]host[:port][/db]");
  }
  const boost::urls::url_view& view = *parsed;

  std::string scheme = view.scheme();
  if (scheme == "rediss") {
    throw_invalid(url, "TLS (rediss://) is not supported yet; use redis:// over a trusted network");
  }
  if (scheme != "redis") {
    throw_invalid(url, "unsupported scheme \"" + scheme + "\"; expected redis://");
  }
  if (!view.has_authority() || view.encoded_host_address().empty()) {
    throw_invalid(url, "the host is missing");
  }
  if (view.has_query() || view.has_fragment()) {
    throw_invalid(url, "query parameters and fragments are not supported");
  }

  ServerAddress address;
  address.host = view.host_address();
  if (view.has_port()) {
    address.port = parse_port(url, view.port());
  }
  if (view.has_userinfo()) {
    address.username = view.user();
    if (!view.has_password()) {
      throw_invalid(url, "user information without a password; write redis://:password@host");
    }
    address.password = view.password();
  }
  address.database = parse_database(url, view.encoded_path());
  return address;
}

std::string redact_url(std::string_view url) {
  std::size_t scheme_end = url.find("://");
  std::size_t authority_begin = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  std::size_t authority_end = url.find_first_of("/?#", authority_begin);
  if (authority_end == std::string_view::npos) {
    authority_end = url.size();
  }
  std::size_t at = url.substr(0, authority_end).rfind('@');
  if (at == std::string_view::npos || at < authority_begin) {
    return std::string(url);
  }
  std::string out(url.substr(0, authority_begin));
  out += "***";
  out += url.substr(at);
  return out;
}

}  // namespace sluice::redis
