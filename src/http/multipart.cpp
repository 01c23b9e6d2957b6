#include <sluice/http/multipart.hpp>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <random>
#include <system_error>
#include <utility>

namespace sluice::http {

namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::size_t kBoundaryRandomChars = 32;

std::string random_boundary() {
  static constexpr std::string_view kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string boundary = "sluice-";
  for (std::size_t i = 0; i < kBoundaryRandomChars; ++i) {
    boundary += kAlphabet[pick(engine)];
  }
  return boundary;
}

// Escapes a name or file name for a quoted Content-Disposition parameter the
// way browsers do (WHATWG HTML, multipart/form-data encoding).
std::string escape_parameter(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (char const c : value) {
    if (c == '"') {
      escaped += "%22";
    } else if (c == '\r') {
      escaped += "%0D";
    } else if (c == '\n') {
      escaped += "%0A";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lower(x) == lower(y);
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// Parameters of a header value such as `form-data; name="a"; filename=b`.
struct HeaderParameter {
  std::string name;
  std::string value;
};

// Splits "type; key=value; key="quoted"" into the leading value and its
// parameters. Quoted strings may contain ';' and backslash escapes.
std::pair<std::string_view, std::vector<HeaderParameter>> split_parameters(std::string_view header,
                                                                           std::string_view what) {
  auto const first_semicolon = header.find(';');
  std::string_view const leading = trim(header.substr(0, first_semicolon));
  std::vector<HeaderParameter> parameters;
  if (first_semicolon == std::string_view::npos) {
    return {leading, parameters};
  }

  std::size_t position = first_semicolon + 1;
  while (position < header.size()) {
    while (position < header.size() && (header[position] == ' ' || header[position] == '\t' || header[position] == ';')) {
      ++position;
    }
    if (position >= header.size()) {
      break;
    }
    auto const equals = header.find('=', position);
    if (equals == std::string_view::npos) {
      throw MultipartError("multipart: parameter without '=' in " + std::string(what) + ": " + std::string(header));
    }
    HeaderParameter parameter;
    parameter.name = std::string(trim(header.substr(position, equals - position)));
    position = equals + 1;
    if (position < header.size() && header[position] == '"') {
      ++position;
      bool closed = false;
      while (position < header.size()) {
        char const c = header[position++];
        if (c == '\\' && position < header.size()) {
          parameter.value += header[position++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          parameter.value += c;
        }
      }
      if (!closed) {
        throw MultipartError("multipart: unterminated quoted string in " + std::string(what) + ": " +
                             std::string(header));
      }
    } else {
      auto const end = header.find(';', position);
      parameter.value = std::string(trim(header.substr(position, end == std::string_view::npos ? end : end - position)));
      position = end == std::string_view::npos ? header.size() : end;
    }
    parameters.push_back(std::move(parameter));
  }
  return {leading, parameters};
}

std::string extract_boundary(std::string_view content_type) {
  auto [media_type, parameters] = split_parameters(content_type, "Content-Type");
  if (media_type.size() < 10 || !iequals(media_type.substr(0, 10), "multipart/")) {
    throw MultipartError("multipart: content type is not multipart: " + std::string(content_type));
  }
  for (auto& parameter : parameters) {
    if (iequals(parameter.name, "boundary")) {
      if (parameter.value.empty() || parameter.value.size() > 200) {
        throw MultipartError("multipart: boundary must have 1 to 200 characters, got " +
                             std::to_string(parameter.value.size()));
      }
      return std::move(parameter.value);
    }
  }
  throw MultipartError("multipart: content type has no boundary parameter: " + std::string(content_type));
}

// Parses the header block of one part (the lines before the empty line).
MultipartPart parse_part_headers(std::string_view block, std::size_t part_index) {
  MultipartPart part;
  bool has_disposition = false;
  while (!block.empty()) {
    auto const end = block.find(kCrlf);
    std::string_view const line = block.substr(0, end);
    block = end == std::string_view::npos ? std::string_view{} : block.substr(end + kCrlf.size());

    auto const colon = line.find(':');
    if (colon == std::string_view::npos) {
      throw MultipartError("multipart: part " + std::to_string(part_index) + " has a header line without ':'");
    }
    std::string_view const name = trim(line.substr(0, colon));
    std::string_view const value = trim(line.substr(colon + 1));
    if (iequals(name, "Content-Disposition")) {
      has_disposition = true;
      auto [disposition, parameters] = split_parameters(value, "Content-Disposition");
      bool has_name = false;
      for (auto& parameter : parameters) {
        if (iequals(parameter.name, "name")) {
          part.name = std::move(parameter.value);
          has_name = true;
        } else if (iequals(parameter.name, "filename")) {
          part.filename = std::move(parameter.value);
        }
      }
      if (!iequals(disposition, "form-data") || !has_name) {
        throw MultipartError("multipart: part " + std::to_string(part_index) +
                             " needs Content-Disposition: form-data with a name");
      }
    } else if (iequals(name, "Content-Type")) {
      part.content_type = std::string(value);
    }
  }
  if (!has_disposition) {
    throw MultipartError("multipart: part " + std::to_string(part_index) + " has no Content-Disposition header");
  }
  return part;
}

}  // namespace

MultipartBody::MultipartBody() : boundary_(random_boundary()) {}

MultipartBody& MultipartBody::add_field(std::string_view name, std::string_view value) {
  parts_.push_back(Part{.name = std::string(name), .filename = std::nullopt, .content_type = {}, .data = std::string(value)});
  return *this;
}

MultipartBody& MultipartBody::add_file(std::string_view name, std::string_view filename, std::string_view content_type,
                                       std::string data) {
  parts_.push_back(Part{.name = std::string(name),
                        .filename = std::string(filename),
                        .content_type = std::string(content_type),
                        .data = std::move(data)});
  return *this;
}

MultipartBody& MultipartBody::add_file_from_path(std::string_view name, std::filesystem::path const& path,
                                                 std::string_view content_type, std::optional<std::string> filename) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw std::system_error(errno, std::generic_category(), "multipart: cannot open " + path.string());
  }
  std::string data{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  if (file.bad()) {
    throw std::system_error(errno, std::generic_category(), "multipart: cannot read " + path.string());
  }
  return add_file(name, filename ? *filename : path.filename().string(), content_type, std::move(data));
}

std::string MultipartBody::content_type() const { return "multipart/form-data; boundary=" + boundary_; }

std::string MultipartBody::finish() {
  auto const contains_boundary = [this] {
    return std::any_of(parts_.begin(), parts_.end(), [this](Part const& part) {
      return part.data.find(boundary_) != std::string::npos;
    });
  };
  while (contains_boundary()) {
    boundary_ = random_boundary();
  }

  std::size_t size = 0;
  for (auto const& part : parts_) {
    size += part.data.size() + part.name.size() + boundary_.size() + 128;
  }
  std::string body;
  body.reserve(size + boundary_.size() + 8);
  for (auto const& part : parts_) {
    body += "--";
    body += boundary_;
    body += "\r\nContent-Disposition: form-data; name=\"";
    body += escape_parameter(part.name);
    body += '"';
    if (part.filename) {
      body += "; filename=\"";
      body += escape_parameter(*part.filename);
      body += '"';
    }
    body += kCrlf;
    if (!part.content_type.empty()) {
      body += "Content-Type: ";
      body += part.content_type;
      body += kCrlf;
    }
    body += kCrlf;
    body += part.data;
    body += kCrlf;
  }
  body += "--";
  body += boundary_;
  body += "--\r\n";
  parts_.clear();
  return body;
}

std::vector<MultipartPart> parse_multipart(std::string_view content_type, std::string_view body) {
  std::string const delimiter = "--" + extract_boundary(content_type);
  std::string const inner_delimiter = "\r\n" + delimiter;

  // The first delimiter may follow a preamble, which is ignored.
  std::size_t position = 0;
  if (!body.starts_with(delimiter)) {
    position = body.find(inner_delimiter);
    if (position == std::string_view::npos) {
      throw MultipartError("multipart: opening boundary not found");
    }
    position += kCrlf.size();
  }
  position += delimiter.size();

  std::vector<MultipartPart> parts;
  for (;;) {
    if (body.substr(position, 2) == "--") {
      return parts;
    }
    // Transport padding (spaces, tabs) may follow a delimiter.
    while (position < body.size() && (body[position] == ' ' || body[position] == '\t')) {
      ++position;
    }
    if (body.substr(position, 2) != kCrlf) {
      throw MultipartError("multipart: boundary of part " + std::to_string(parts.size()) +
                           " is not followed by CRLF");
    }
    position += kCrlf.size();

    std::size_t data_start = 0;
    std::string_view headers;
    if (body.substr(position, 2) == kCrlf) {
      data_start = position + kCrlf.size();
    } else {
      auto const headers_end = body.find("\r\n\r\n", position);
      if (headers_end == std::string_view::npos) {
        throw MultipartError("multipart: headers of part " + std::to_string(parts.size()) + " do not end");
      }
      headers = body.substr(position, headers_end - position);
      data_start = headers_end + 4;
    }
    auto const data_end = body.find(inner_delimiter, data_start);
    if (data_end == std::string_view::npos) {
      throw MultipartError("multipart: part " + std::to_string(parts.size()) + " has no closing boundary");
    }

    auto part = parse_part_headers(headers, parts.size());
    part.data = std::string(body.substr(data_start, data_end - data_start));
    parts.push_back(std::move(part));
    position = data_end + inner_delimiter.size();
  }
}

}  // namespace sluice::http
