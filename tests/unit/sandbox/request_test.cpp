#include <sluice/sandbox/request.hpp>

#include <gtest/gtest.h>

namespace sluice::sandbox {
namespace {

TEST(Request, RoutesBotApiTargets) {
  auto route = parse_target("/bot123:abc/sendMessage?chat_id=1");
  EXPECT_EQ(route.kind, RouteKind::bot_api);
  EXPECT_EQ(route.token, "123:abc");
  EXPECT_EQ(route.method, "sendMessage");
  EXPECT_EQ(route.query, "chat_id=1");
}

TEST(Request, RoutesControlAndUnknownTargets) {
  auto control = parse_target("/sandbox/wait?condition=all_confirmed");
  EXPECT_EQ(control.kind, RouteKind::control);
  EXPECT_EQ(control.control_path, "wait");
  EXPECT_EQ(parse_target("/").kind, RouteKind::not_found);
  EXPECT_EQ(parse_target("/bot123:abc").kind, RouteKind::not_found);
  EXPECT_EQ(parse_target("/bot123:abc/").kind, RouteKind::not_found);
  EXPECT_EQ(parse_target("/bot123:abc/a/b").kind, RouteKind::not_found);
  EXPECT_EQ(parse_target("/file/bot123:abc/photos/1.jpg").kind, RouteKind::not_found);
}

TEST(Request, DecodesQueryAndFormBody) {
  auto route = parse_target("/botT/sendMessage?chat_id=1&text=query");
  auto parsed = parse_api_request(route, "application/x-www-form-urlencoded; charset=utf-8",
                                  "text=hello+world%21&parse_mode=HTML&flag");
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(parsed));
  auto const& request = std::get<ApiRequest>(parsed);
  EXPECT_EQ(request.params.at("chat_id").as_string(), "1");
  EXPECT_EQ(request.params.at("text").as_string(), "hello world!");
  EXPECT_EQ(request.params.at("parse_mode").as_string(), "HTML");
  EXPECT_EQ(request.params.at("flag").as_string(), "");
}

TEST(Request, DecodesJsonBody) {
  auto route = parse_target("/botT/sendMessage");
  auto parsed = parse_api_request(route, "application/json", R"({"chat_id":42,"text":"hi","reply_markup":{"a":1}})");
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(parsed));
  auto const& request = std::get<ApiRequest>(parsed);
  EXPECT_EQ(request.params.at("chat_id").as_int64(), 42);
  EXPECT_TRUE(request.params.at("reply_markup").is_object());
}

TEST(Request, RejectsMalformedJsonBody) {
  auto route = parse_target("/botT/sendMessage");
  auto parsed = parse_api_request(route, "application/json", "{\"chat_id\":");
  ASSERT_TRUE(std::holds_alternative<RequestError>(parsed));
  EXPECT_EQ(std::get<RequestError>(parsed).status, 400u);
  EXPECT_EQ(std::get<RequestError>(parsed).description, "Bad Request: can't parse JSON object");
  auto array = parse_api_request(route, "application/json", "[1,2]");
  EXPECT_TRUE(std::holds_alternative<RequestError>(array));
}

TEST(Request, DecodesMultipartBody) {
  std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"chat_id\"\r\n\r\n"
      "7\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"document\"; filename=\"a.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n"
      "hello\r\n"
      "--XyZ--\r\n";
  auto parsed = parse_api_request(parse_target("/botT/sendDocument"), "multipart/form-data; boundary=XyZ", body);
  ASSERT_TRUE(std::holds_alternative<ApiRequest>(parsed));
  auto const& request = std::get<ApiRequest>(parsed);
  EXPECT_EQ(request.params.at("chat_id").as_string(), "7");
  ASSERT_TRUE(request.files.contains("document"));
  EXPECT_EQ(request.files.at("document").filename, "a.txt");
  EXPECT_EQ(request.files.at("document").data, "hello");
}

TEST(Request, RejectsBrokenMultipart) {
  auto parsed = parse_api_request(parse_target("/botT/sendDocument"), "multipart/form-data; boundary=XyZ", "garbage");
  ASSERT_TRUE(std::holds_alternative<RequestError>(parsed));
  EXPECT_EQ(std::get<RequestError>(parsed).status, 400u);
}

TEST(Request, ParamsConvertLikeTelegram) {
  boost::json::object raw{{"n", "42"}, {"bad", "x1"}, {"empty", ""}, {"flag", "true"}, {"json", R"({"a":1})"},
                          {"number", 7}};
  Params params(raw);
  EXPECT_EQ(params.integer("n"), 42);
  EXPECT_EQ(params.integer("bad"), 0);
  EXPECT_FALSE(params.integer("empty").has_value());
  EXPECT_FALSE(params.integer("missing").has_value());
  EXPECT_TRUE(params.boolean("flag"));
  EXPECT_FALSE(params.boolean("missing"));
  EXPECT_EQ(params.text("number"), "7");
  ASSERT_TRUE(params.json("json").has_value());
  EXPECT_TRUE(params.json("json")->is_object());
  EXPECT_THROW(params.json("bad"), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::sandbox
