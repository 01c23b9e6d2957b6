#include "multipart.hpp"

#include <sluice/http/multipart.hpp>

namespace sluice::sandbox {

std::optional<std::vector<FormPart>> parse_multipart_form(std::string_view content_type, std::string_view body) {
  std::vector<http::MultipartPart> parts;
  try {
    parts = http::parse_multipart(content_type, body);
  } catch (http::MultipartError const&) {
    return std::nullopt;
  }
  std::vector<FormPart> result;
  result.reserve(parts.size());
  for (auto& part : parts) {
    result.push_back(FormPart{
        .name = std::move(part.name),
        .filename = std::move(part.filename),
        .content_type = std::move(part.content_type),
        .data = std::move(part.data),
    });
  }
  return result;
}

}  // namespace sluice::sandbox
