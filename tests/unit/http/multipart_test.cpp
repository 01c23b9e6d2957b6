#include <sluice/http/multipart.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace sluice::http {
namespace {

TEST(Multipart, BuildAndParseRoundTrip) {
  MultipartBody body;
  body.add_field("chat_id", "-100123");
  body.add_file("document", "report.csv", "text/csv", std::string("a,b\r\n1,2\r\n\0end", 15));
  std::string const encoded = body.finish();

  auto const parts = parse_multipart(body.content_type(), encoded);

  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "chat_id");
  EXPECT_EQ(parts[0].data, "-100123");
  EXPECT_FALSE(parts[0].filename.has_value());
  EXPECT_EQ(parts[0].content_type, "");
  EXPECT_EQ(parts[1].name, "document");
  EXPECT_EQ(parts[1].filename.value_or("(none)"), "report.csv");
  EXPECT_EQ(parts[1].content_type, "text/csv");
  EXPECT_EQ(parts[1].data, std::string("a,b\r\n1,2\r\n\0end", 15));
}

TEST(Multipart, ContentTypeCarriesBoundary) {
  MultipartBody body;
  body.add_field("a", "b");
  std::string const encoded = body.finish();

  EXPECT_EQ(body.content_type(), "multipart/form-data; boundary=" + body.boundary());
  EXPECT_TRUE(encoded.starts_with("--" + body.boundary() + "\r\n")) << encoded;
  EXPECT_TRUE(encoded.ends_with("--" + body.boundary() + "--\r\n")) << encoded;
}

TEST(Multipart, BoundaryInDataIsReplaced) {
  MultipartBody body;
  std::string const first_boundary = body.boundary();
  body.add_field("text", "prefix " + first_boundary + " suffix");
  std::string const encoded = body.finish();

  auto const parts = parse_multipart(body.content_type(), encoded);

  EXPECT_NE(body.boundary(), first_boundary);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].data, "prefix " + first_boundary + " suffix");
}

TEST(Multipart, QuotesInNamesAreEscaped) {
  MultipartBody body;
  body.add_file("file", "my \"best\"\r\nfile.txt", "text/plain", "x");
  std::string const encoded = body.finish();

  auto const parts = parse_multipart(body.content_type(), encoded);

  EXPECT_NE(encoded.find("filename=\"my %22best%22%0D%0Afile.txt\""), std::string::npos) << encoded;
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].filename.value_or(""), "my %22best%22%0D%0Afile.txt");
}

TEST(Multipart, ParsesCurlStyleBodyWithPreamble) {
  std::string const body =
      "preamble to ignore\r\n"
      "------XyZ\r\n"
      "Content-Disposition: form-data; name=\"photo\"; filename=\"a;b.jpg\"\r\n"
      "Content-Type: image/jpeg\r\n"
      "\r\n"
      "JPEGDATA\r\n"
      "------XyZ\r\n"
      "content-disposition: form-data; name=caption\r\n"
      "\r\n"
      "hello\r\n"
      "------XyZ--\r\n"
      "epilogue";

  auto const parts = parse_multipart("multipart/form-data; boundary=\"----XyZ\"", body);

  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "photo");
  EXPECT_EQ(parts[0].filename.value_or(""), "a;b.jpg");
  EXPECT_EQ(parts[0].content_type, "image/jpeg");
  EXPECT_EQ(parts[0].data, "JPEGDATA");
  EXPECT_EQ(parts[1].name, "caption");
  EXPECT_EQ(parts[1].data, "hello");
}

TEST(Multipart, EmptyPartDataIsKept) {
  std::string const body = "--b\r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n--b--\r\n";

  auto const parts = parse_multipart("multipart/form-data; boundary=b", body);

  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].name, "empty");
  EXPECT_EQ(parts[0].data, "");
}

TEST(Multipart, MissingBoundaryParameterThrows) {
  EXPECT_THROW(parse_multipart("multipart/form-data", "--b\r\n"), MultipartError);
  EXPECT_THROW(parse_multipart("application/json", "{}"), MultipartError);
}

TEST(Multipart, MissingClosingBoundaryThrows) {
  std::string const body = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ndata without end";

  EXPECT_THROW(parse_multipart("multipart/form-data; boundary=b", body), MultipartError);
}

TEST(Multipart, PartWithoutNameThrows) {
  std::string const body = "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n";

  EXPECT_THROW(parse_multipart("multipart/form-data; boundary=b", body), MultipartError);
}

TEST(Multipart, HeaderLineWithoutColonThrows) {
  std::string const body = "--b\r\nnot a header\r\n\r\nx\r\n--b--\r\n";

  EXPECT_THROW(parse_multipart("multipart/form-data; boundary=b", body), MultipartError);
}

TEST(Multipart, FileFromPathUsesFileName) {
  auto const path = std::filesystem::temp_directory_path() / "sluice_multipart_test_upload.bin";
  {
    std::ofstream file(path, std::ios::binary);
    file << "file bytes";
  }
  MultipartBody body;
  body.add_file_from_path("document", path);
  std::string const encoded = body.finish();
  std::filesystem::remove(path);

  auto const parts = parse_multipart(body.content_type(), encoded);

  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].filename.value_or(""), "sluice_multipart_test_upload.bin");
  EXPECT_EQ(parts[0].content_type, "application/octet-stream");
  EXPECT_EQ(parts[0].data, "file bytes");
}

TEST(Multipart, MissingFileThrows) {
  MultipartBody body;

  EXPECT_THROW(body.add_file_from_path("document", "/nonexistent/sluice/file.bin"), std::system_error);
}

}  // namespace
}  // namespace sluice::http
