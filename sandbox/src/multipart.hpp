#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sandbox {

/// One part of a multipart/form-data body.
struct FormPart {
  std::string name;
  /// Set for file parts (a Content-Disposition with a filename).
  std::optional<std::string> filename;
  std::string content_type;
  std::string data;
};

/// Splits a multipart/form-data body into its parts; nullopt when the body
/// or the boundary parameter of `content_type` is malformed.
std::optional<std::vector<FormPart>> parse_multipart_form(std::string_view content_type, std::string_view body);

}  // namespace sluice::sandbox
