#pragma once

// InputFile: a file that a request sends (https://core.telegram.org/bots/api#inputfile
// and #sending-files).
//
// How requests with files are serialised (serialize_request in
// <sluice/telegram/request.hpp>):
//   * A file_id or URL is an ordinary JSON string wherever it appears.
//   * An upload (from_path, from_bytes) cannot be JSON. When the request
//     field itself is the file (SendPhoto::photo), the field is left out of
//     the JSON fields and an Upload with part_name "photo" is recorded.
//     When the file sits inside a nested object (InputMediaPhoto::media in
//     SendMediaGroup::media), the JSON holds "attach://file<N>" and an Upload
//     with part_name "file<N>" is recorded.
//   * A request with at least one Upload must go out as multipart/form-data:
//     one text part per JSON field (strings as they are, other values as
//     JSON text) plus one file part per Upload. Without uploads it may go
//     out as an application/json body.
//   * Writing an upload through to_json / serialize_json (plain JSON, no
//     place for file parts) throws std::invalid_argument.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <sluice/telegram/json_fwd.hpp>

namespace sluice::telegram {

/// A file for a request: a file_id or URL that Telegram already knows how
/// to fetch, or an upload from a local path or from bytes in memory.
///
/// Copies are cheap: uploaded bytes are shared, not copied. Equality
/// compares the kind, the reference or path, the bytes, the filename and
/// the MIME type.
class InputFile {
 public:
  enum class Kind : std::uint8_t {
    FileId,      ///< A file_id of a file Telegram already stores.
    Url,         ///< An HTTP(S) URL that Telegram downloads.
    Attachment,  ///< "attach://<name>": a part of a multipart request (seen when parsing).
    Path,        ///< Upload: a local file, read when the request is sent.
    Bytes,       ///< Upload: bytes held in memory.
  };

  /// An empty file_id; Telegram rejects it. Exists so that requests are
  /// default-constructible.
  InputFile() = default;

  static InputFile from_file_id(std::string file_id);
  static InputFile from_url(std::string url);
  /// `filename` defaults to the last component of `path`; an empty
  /// `mime_type` leaves the choice to the multipart encoder.
  static InputFile from_path(std::filesystem::path path, std::string mime_type = {});
  static InputFile from_bytes(std::string filename, std::string data, std::string mime_type = {});
  static InputFile from_attachment(std::string part_name);

  /// Classifies a string as it appears in request JSON: "attach://x" is an
  /// Attachment, "http://" and "https://" URLs are Url, anything else is a
  /// FileId.
  static InputFile from_json_string(std::string_view value);

  [[nodiscard]] Kind kind() const noexcept { return kind_; }

  /// True for Path and Bytes: the request needs multipart/form-data.
  [[nodiscard]] bool is_upload() const noexcept {
    return kind_ == Kind::Path || kind_ == Kind::Bytes;
  }

  /// The file_id, URL or attachment part name; empty for uploads.
  [[nodiscard]] const std::string& reference() const noexcept { return reference_; }

  /// The local path of a Path upload; empty otherwise.
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  /// The bytes of a Bytes upload; empty otherwise.
  [[nodiscard]] std::string_view data() const noexcept {
    return data_ ? std::string_view(*data_) : std::string_view();
  }

  /// The filename sent in the multipart part.
  [[nodiscard]] const std::string& filename() const noexcept { return filename_; }

  /// The MIME type sent in the multipart part; empty when not given.
  [[nodiscard]] const std::string& mime_type() const noexcept { return mime_type_; }

  /// The string that request JSON carries for a FileId, Url or Attachment.
  [[nodiscard]] std::string json_string() const;

  friend bool operator==(const InputFile& lhs, const InputFile& rhs);

 private:
  Kind kind_ = Kind::FileId;
  std::string reference_;
  std::filesystem::path path_;
  std::shared_ptr<const std::string> data_;
  std::string filename_;
  std::string mime_type_;
};

/// A file part of a multipart/form-data request.
struct Upload {
  /// Name of the form part: the request field ("photo") or the name that
  /// an "attach://<name>" string in the JSON refers to.
  std::string part_name{};
  InputFile file{};

  bool operator==(const Upload&) const = default;
};

/// Reads a JSON string with InputFile::from_json_string.
bool read_json(const boost::json::value& json, InputFile& out, detail::ReadContext& context);
/// Writes a FileId, Url or Attachment as a string; records an upload with
/// the context and writes "attach://<name>" for Path and Bytes.
void write_json(boost::json::value& json, const InputFile& in, detail::WriteContext& context);

}  // namespace sluice::telegram
