#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::http {

/// Builds a multipart/form-data request body (RFC 7578), for example a Bot
/// API call with an uploaded file.
///
/// Example:
///   MultipartBody body;
///   body.add_field("chat_id", "42");
///   body.add_file("photo", "cat.jpg", "image/jpeg", bytes);
///   request.content_type = body.content_type();
///   request.body = std::move(body).finish();
class MultipartBody {
 public:
  /// Uses a random boundary; a boundary that occurs in a part's data is
  /// replaced at `finish()`.
  MultipartBody();

  /// Appends a text field.
  MultipartBody& add_field(std::string_view name, std::string_view value);

  /// Appends a file part from bytes in memory.
  MultipartBody& add_file(std::string_view name, std::string_view filename, std::string_view content_type,
                          std::string data);

  /// Appends a file part read from `path`, named after the file unless
  /// `filename` is given. Throws std::system_error if the file cannot be read.
  /// NOTE: reads the whole file with blocking I/O; on the event loop, call it
  /// through runtime::offload() for files that are not small.
  MultipartBody& add_file_from_path(std::string_view name, std::filesystem::path const& path,
                                    std::string_view content_type = "application/octet-stream",
                                    std::optional<std::string> filename = std::nullopt);

  /// Returns the Content-Type header value with the boundary. Call it after
  /// `finish()`, which changes the boundary if a part contains it.
  std::string content_type() const;

  /// Returns the encoded body. Call once; the builder is empty afterwards.
  std::string finish();

  std::string const& boundary() const noexcept { return boundary_; }

 private:
  struct Part {
    std::string name;
    std::optional<std::string> filename;
    std::string content_type;
    std::string data;
  };

  std::string boundary_;
  std::vector<Part> parts_;
};

/// One part of a parsed multipart/form-data body.
struct MultipartPart {
  std::string name;
  /// Present for file parts.
  std::optional<std::string> filename;
  /// The part's Content-Type; empty if the part has none (a text field).
  std::string content_type;
  std::string data;
};

/// A multipart body that cannot be parsed. The message names the part and
/// the problem.
class MultipartError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses a multipart/form-data body given the request's Content-Type header
/// value (which carries the boundary). Throws MultipartError for a content
/// type without a boundary, a missing closing boundary, a part without a
/// Content-Disposition name or malformed part headers.
std::vector<MultipartPart> parse_multipart(std::string_view content_type, std::string_view body);

}  // namespace sluice::http
