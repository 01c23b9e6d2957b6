#include <sluice/telegram/input_file.hpp>

#include <utility>

#include <sluice/telegram/json.hpp>

namespace sluice::telegram {
namespace {

constexpr std::string_view kAttachPrefix = "attach://";

}  // namespace

InputFile InputFile::from_file_id(std::string file_id) {
  InputFile file;
  file.kind_ = Kind::FileId;
  file.reference_ = std::move(file_id);
  return file;
}

InputFile InputFile::from_url(std::string url) {
  InputFile file;
  file.kind_ = Kind::Url;
  file.reference_ = std::move(url);
  return file;
}

InputFile InputFile::from_path(std::filesystem::path path, std::string mime_type) {
  InputFile file;
  file.kind_ = Kind::Path;
  file.filename_ = path.filename().string();
  file.path_ = std::move(path);
  file.mime_type_ = std::move(mime_type);
  return file;
}

InputFile InputFile::from_bytes(std::string filename, std::string data, std::string mime_type) {
  InputFile file;
  file.kind_ = Kind::Bytes;
  file.filename_ = std::move(filename);
  file.data_ = std::make_shared<const std::string>(std::move(data));
  file.mime_type_ = std::move(mime_type);
  return file;
}

InputFile InputFile::from_attachment(std::string part_name) {
  InputFile file;
  file.kind_ = Kind::Attachment;
  file.reference_ = std::move(part_name);
  return file;
}

InputFile InputFile::from_json_string(std::string_view value) {
  if (value.starts_with(kAttachPrefix)) {
    return from_attachment(std::string(value.substr(kAttachPrefix.size())));
  }
  if (value.starts_with("http://") || value.starts_with("https://")) {
    return from_url(std::string(value));
  }
  return from_file_id(std::string(value));
}

std::string InputFile::json_string() const {
  if (kind_ == Kind::Attachment) {
    return std::string(kAttachPrefix) + reference_;
  }
  return reference_;
}

bool operator==(const InputFile& lhs, const InputFile& rhs) {
  return lhs.kind_ == rhs.kind_ && lhs.reference_ == rhs.reference_ && lhs.path_ == rhs.path_ &&
         lhs.data() == rhs.data() && lhs.filename_ == rhs.filename_ &&
         lhs.mime_type_ == rhs.mime_type_;
}

bool read_json(const boost::json::value& json, InputFile& out, detail::ReadContext& context) {
  const boost::json::string* value = json.if_string();
  if (value == nullptr) {
    return context.fail_kind("string", json);
  }
  out = InputFile::from_json_string(std::string_view(value->data(), value->size()));
  return true;
}

void write_json(boost::json::value& json, const InputFile& in, detail::WriteContext& context) {
  if (in.is_upload()) {
    json = context.attach(in);
    return;
  }
  json = in.json_string();
}

}  // namespace sluice::telegram
