#include <sluice/db/url.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace sluice::db {
namespace {

constexpr std::string_view kRedacted = "***";

std::string lowercase(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return result;
}

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

std::string percent_decode(std::string_view text, std::string_view what, std::string_view url) {
  std::string result;
  result.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      result.push_back(text[i]);
      continue;
    }
    const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (high < 0 || low < 0) {
      throw UrlError(fmt::format("invalid database URL `{}`: bad percent-encoding in the {}", redact_url(url), what));
    }
    result.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return result;
}

void parse_query(std::string_view query, std::string_view url, DatabaseUrl& result) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (item.empty()) {
      continue;
    }
    const auto eq = item.find('=');
    if (eq == 0 || eq == std::string_view::npos) {
      throw UrlError(fmt::format("invalid database URL `{}`: query parameter `{}` is not key=value",
                                 redact_url(url), eq == std::string_view::npos ? item : std::string_view("=")));
    }
    result.parameters.emplace_back(percent_decode(item.substr(0, eq), "query parameter name", url),
                                   percent_decode(item.substr(eq + 1), "query parameter value", url));
  }
}

std::uint16_t parse_port(std::string_view text, std::string_view url) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) {
    throw UrlError(fmt::format("invalid database URL `{}`: port `{}` is not a number from 1 to 65535",
                               redact_url(url), text));
  }
  return static_cast<std::uint16_t>(value);
}

// Moves a query parameter that names a URL part (host=, port=, user=, ...)
// into that part when the URL left it empty.
void adopt_parameter(DatabaseUrl& result, std::string_view key, std::string& target) {
  auto it = std::find_if(result.parameters.begin(), result.parameters.end(),
                         [&](const auto& item) { return item.first == key; });
  if (it == result.parameters.end()) {
    return;
  }
  if (target.empty()) {
    target = it->second;
  }
  result.parameters.erase(it);
}

DatabaseUrl parse_postgresql(std::string_view rest, std::string_view url) {
  DatabaseUrl result;
  result.backend = Backend::postgresql;

  const auto question = rest.find('?');
  if (question != std::string_view::npos) {
    parse_query(rest.substr(question + 1), url, result);
    rest = rest.substr(0, question);
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    result.database = percent_decode(rest.substr(slash + 1), "database name", url);
  }

  const auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    result.user = percent_decode(userinfo.substr(0, colon), "user name", url);
    if (colon != std::string_view::npos) {
      result.password = percent_decode(userinfo.substr(colon + 1), "password", url);
    }
  }

  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      throw UrlError(fmt::format("invalid database URL `{}`: IPv6 host is missing `]`", redact_url(url)));
    }
    result.host = std::string(authority.substr(1, close - 1));
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        throw UrlError(fmt::format("invalid database URL `{}`: unexpected `{}` after the host", redact_url(url), after));
      }
      result.port = parse_port(after.substr(1), url);
    }
  } else {
    const auto colon = authority.rfind(':');
    result.host = percent_decode(authority.substr(0, colon), "host", url);
    if (colon != std::string_view::npos) {
      result.port = parse_port(authority.substr(colon + 1), url);
    }
  }

  adopt_parameter(result, "host", result.host);
  adopt_parameter(result, "user", result.user);
  adopt_parameter(result, "password", result.password);
  adopt_parameter(result, "dbname", result.database);
  std::string port;
  adopt_parameter(result, "port", port);
  if (!port.empty()) {
    result.port = parse_port(port, url);
  }
  return result;
}

DatabaseUrl parse_sqlite(std::string_view rest, std::string_view url) {
  DatabaseUrl result;
  result.backend = Backend::sqlite;

  const auto question = rest.find('?');
  if (question != std::string_view::npos) {
    parse_query(rest.substr(question + 1), url, result);
    rest = rest.substr(0, question);
  }
  if (rest == ":memory:" || rest == "/:memory:") {
    result.database = ":memory:";
    return result;
  }
  constexpr std::string_view kForms =
      "a SQLite URL is sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite://:memory:";
  // sqlite:// and sqlite:/// name no file. They are rejected rather than
  // opened as :memory:, because each connection to :memory: is a separate
  // database: the tables that migrate() created are missing from the next.
  if (rest.empty() || rest == "/") {
    throw UrlError(fmt::format("invalid database URL `{}`: the file path is empty; {}", redact_url(url), kForms));
  }
  if (!rest.starts_with('/')) {
    throw UrlError(fmt::format("invalid database URL `{}`: {}", redact_url(url), kForms));
  }
  result.database = percent_decode(rest.substr(1), "file path", url);
  return result;
}

}  // namespace

DatabaseUrl DatabaseUrl::parse(std::string_view url) {
  const auto separator = url.find("://");
  if (separator == std::string_view::npos || separator == 0) {
    throw UrlError(fmt::format(
        "invalid database URL `{}`: missing scheme; expected postgresql://... or sqlite://...", redact_url(url)));
  }
  const auto scheme = lowercase(url.substr(0, separator));
  const auto rest = url.substr(separator + 3);
  if (scheme == "postgresql" || scheme == "postgres") {
    return parse_postgresql(rest, url);
  }
  if (scheme == "sqlite") {
    return parse_sqlite(rest, url);
  }
  throw UrlError(fmt::format("invalid database URL `{}`: unsupported scheme `{}`; expected postgresql or sqlite",
                             redact_url(url), scheme));
}

const std::string* DatabaseUrl::parameter(std::string_view key) const {
  for (const auto& [name, value] : parameters) {
    if (name == key) {
      return &value;
    }
  }
  return nullptr;
}

std::string DatabaseUrl::redacted() const {
  std::string text;
  if (backend == Backend::sqlite) {
    text = database == ":memory:" ? "sqlite://:memory:" : "sqlite:///" + database;
  } else {
    text = "postgresql://";
    if (!user.empty() || !password.empty()) {
      text += user;
      if (!password.empty()) {
        text += ':';
        text += kRedacted;
      }
      text += '@';
    }
    text += host.find(':') != std::string::npos ? "[" + host + "]" : host;
    text += fmt::format(":{}/{}", port, database);
  }
  char separator = '?';
  for (const auto& [key, value] : parameters) {
    text += separator;
    text += key;
    text += '=';
    text += lowercase(key) == "password" ? std::string(kRedacted) : value;
    separator = '&';
  }
  return text;
}

std::string redact_url(std::string_view url) {
  std::string result(url);

  // userinfo password: scheme://user:PASSWORD@host
  const auto scheme_end = result.find("://");
  if (scheme_end != std::string::npos) {
    const auto authority_begin = scheme_end + 3;
    auto authority_end = result.find_first_of("/?#", authority_begin);
    if (authority_end == std::string::npos) {
      authority_end = result.size();
    }
    const auto at = result.rfind('@', authority_end);
    if (at != std::string::npos && at >= authority_begin) {
      const auto colon = result.find(':', authority_begin);
      if (colon != std::string::npos && colon < at) {
        result.replace(colon + 1, at - colon - 1, kRedacted);
      }
    }
  }

  // password=VALUE in a query string or a libpq key=value string.
  std::size_t pos = 0;
  for (;;) {
    const auto lower = lowercase(result);
    pos = lower.find("password=", pos);
    if (pos == std::string::npos) {
      break;
    }
    const auto value_begin = pos + 9;
    auto value_end = result.find_first_of("& \t", value_begin);
    if (value_end == std::string::npos) {
      value_end = result.size();
    }
    result.replace(value_begin, value_end - value_begin, kRedacted);
    pos = value_begin + kRedacted.size();
  }
  return result;
}

}  // namespace sluice::db
