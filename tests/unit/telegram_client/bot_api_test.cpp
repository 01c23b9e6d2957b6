#include <sluice/telegram/bot_api.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <vector>
#include <optional>
#include <string>
#include <type_traits>

#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sluice/http/multipart.hpp>
#include <sluice/runtime/logging.hpp>
#include <sluice/telegram/redact.hpp>

#include "fake_bot_api_server.hpp"
#include "test_data.hpp"

namespace sluice::telegram {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::CannedReply;
using test::FakeBotApiServer;
using test::message_json;
using test::ok_reply;
using test::read_test_data;
using test::run_until_done;

constexpr std::string_view kToken = "4839574812:AAFD39kkdpWt3ywyRZergyOLMaJhac60qc";

// ASSERT_* returns from the function, which a coroutine cannot do.
#define CO_ASSERT_TRUE(condition)                          \
  if (!(condition)) {                                      \
    ADD_FAILURE() << "expected true: " #condition;         \
    co_return;                                             \
  }

static_assert(std::is_trivially_destructible_v<CallOptions>,
              "CallOptions is a default argument inside co_await expressions; g++ 12 may "
              "destroy it twice, which is harmless only for trivially destructible types");

BotApiOptions test_options(const std::string& base_url) {
  BotApiOptions options{.token = std::string(kToken), .base_url = base_url};
  options.flood.enabled = false;
  options.retry.initial_backoff = 10ms;
  options.retry.max_backoff = 50ms;
  options.http.request_timeout = 5s;
  options.jitter_seed = 1;
  return options;
}

CannedReply reply_from_file(std::string_view file, int status) {
  return {.status = status, .body = read_test_data(std::string("responses/") + std::string(file))};
}

// Runs a test body against a FakeBotApiServer with a BotApi built from
// `options` (base_url filled in).
class Harness {
 public:
  Harness() : server(io.get_executor()) { server.start(); }

  ~Harness() {
    api.reset();
    server.stop();
    io.run_for(2s);
  }

  BotApi& make_api(BotApiOptions options) {
    api.emplace(io.get_executor(), std::move(options));
    return *api;
  }

  BotApi& make_api() { return make_api(test_options(server.base_url())); }

  asio::io_context io;
  FakeBotApiServer server;
  std::optional<BotApi> api;
};

template <class Error, class Request>
asio::awaitable<std::optional<Error>> call_expecting(BotApi& api, Request request,
                                                    CallOptions options = {}) {
  try {
    co_await api.call(std::move(request), options);
  } catch (const Error& error) {
    co_return error;
  }
  co_return std::nullopt;
}

TEST(BotApi, GetMeReturnsUser) {
  Harness h;
  h.server.set_default("getMe", reply_from_file("ok_get_me_01.json", 200));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    GetMe request;
    const User me = co_await api.get_me(std::move(request));
    EXPECT_EQ(me.id, 100000019);
    EXPECT_TRUE(me.is_bot);
    EXPECT_EQ(me.username, std::optional<std::string>("example52_bot"));
  });

  ASSERT_EQ(h.server.calls().size(), 1U);
  EXPECT_EQ(h.server.calls()[0].target, "/bot" + std::string(kToken) + "/getMe");
}

// A request whose serialisation fails, as one with an invalid field would.
struct Unwritable {
  static constexpr std::string_view method_name = "getMe";
  using result_type = User;
};

void write_json(boost::json::value& /*json*/, const Unwritable& /*request*/, detail::WriteContext& /*context*/) {
  throw std::invalid_argument("this request cannot be written");
}

TEST(BotApi, SerialisationErrorIsThrownWhenAwaited) {
  Harness h;
  BotApi& api = h.make_api();
  std::optional<asio::awaitable<User>> pending;

  EXPECT_NO_THROW(pending.emplace(api.call(Unwritable{})));
  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    bool thrown = false;
    try {
      co_await std::move(*pending);
    } catch (const std::invalid_argument&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
  });

  EXPECT_TRUE(h.server.calls().empty());
}

TEST(BotApi, SendMessageSendsJsonBody) {
  Harness h;
  h.server.set_default("sendMessage", ok_reply(message_json(42, "hi")));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "hi"};
    const Message sent = co_await api.send_message(std::move(request));
    EXPECT_EQ(sent.message_id, 17);
    EXPECT_EQ(sent.chat.id, 42);
    EXPECT_EQ(sent.text, std::optional<std::string>("hi"));
  });

  ASSERT_EQ(h.server.calls().size(), 1U);
  const auto& call = h.server.calls()[0];
  EXPECT_EQ(call.content_type, "application/json");
  const auto body = boost::json::parse(call.body).as_object();
  EXPECT_EQ(body.at("chat_id").as_int64(), 42);
  EXPECT_EQ(body.at("text").as_string(), "hi");
  EXPECT_EQ(body.size(), 2U) << call.body;
}

TEST(BotApi, GetUpdatesReturnsUpdates) {
  Harness h;
  h.server.set_default("getUpdates", reply_from_file("getupdates_result_02.json", 200));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    GetUpdates request{.offset = 5, .timeout = 0};
    const std::vector<Update> updates = co_await api.get_updates(std::move(request));
    EXPECT_EQ(updates.size(), 5U);
  });

  ASSERT_EQ(h.server.calls().size(), 1U);
  const auto body = boost::json::parse(h.server.calls()[0].body).as_object();
  EXPECT_EQ(body.at("offset").as_int64(), 5);
}

TEST(BotApi, BadRequestThrowsTelegramError) {
  Harness h;
  h.server.set_default("sendMessage", reply_from_file("error_400_chat_not_found_01.json", 400));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "hi"};
    const auto error = co_await call_expecting<TelegramError>(api, std::move(request));
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->method(), "sendMessage");
    EXPECT_EQ(error->error_code(), 400);
    EXPECT_EQ(error->description(), "Bad Request: chat not found");
    EXPECT_EQ(error->attempts(), 1U);
  });
  EXPECT_EQ(h.server.calls_of("sendMessage"), 1U);
}

TEST(BotApi, ForbiddenThrowsTelegramError) {
  Harness h;
  h.server.set_default("sendMessage", reply_from_file("error_403_bot_blocked_01.json", 403));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "hi"};
    const auto error = co_await call_expecting<TelegramError>(api, std::move(request));
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->error_code(), 403);
    EXPECT_EQ(error->description(), "Forbidden: bot was blocked by the user");
  });
  EXPECT_EQ(h.server.calls_of("sendMessage"), 1U);
}

TEST(BotApi, FloodLimitFieldsFromReply) {
  Harness h;
  h.server.set_default("sendMessage", reply_from_file("error_429_retry_after_01.json", 429));
  BotApiOptions options = test_options(h.server.base_url());
  options.retry.retry_flood_limit = false;
  BotApi& api = h.make_api(options);

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "hi"};
    const auto error = co_await call_expecting<TelegramError>(api, std::move(request));
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->error_code(), 429);
    EXPECT_TRUE(error->is_flood_limit());
    EXPECT_EQ(error->retry_after(), std::optional(8s));
  });
  EXPECT_EQ(api.metrics().flood_limits, 1U);
}

TEST(BotApi, MigrateToChatIdFromReply) {
  Harness h;
  h.server.set_default("sendMessage", reply_from_file("error_400_group_migrated_02.json", 400));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = -100000001, .text = "hi"};
    const auto error = co_await call_expecting<TelegramError>(api, std::move(request));
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->error_code(), 400);
    EXPECT_EQ(error->migrate_to_chat_id(), std::optional<std::int64_t>(-100000000001));
  });
  EXPECT_EQ(h.server.calls_of("sendMessage"), 1U);
}

TEST(BotApi, FloodLimitPausesChatThenRetries) {
  Harness h;
  h.server.push_reply(
      "sendMessage",
      {.status = 429,
       .body = R"({"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1",)"
               R"("parameters":{"retry_after":1}})"});
  h.server.set_default("sendMessage", ok_reply(message_json(42, "hi")));
  BotApiOptions options = test_options(h.server.base_url());
  options.flood.enabled = true;
  BotApi& api = h.make_api(options);

  const auto start = std::chrono::steady_clock::now();
  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "hi"};
    const Message sent = co_await api.send_message(std::move(request));
    EXPECT_EQ(sent.message_id, 17);
  });

  EXPECT_GE(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(h.server.calls_of("sendMessage"), 2U);
  const auto metrics = api.metrics();
  EXPECT_EQ(metrics.flood_limits, 1U);
  EXPECT_EQ(metrics.retries, 1U);
  EXPECT_EQ(metrics.telegram_errors.at(429), 1U);
}

TEST(BotApi, FloodLimitPauseHoldsOtherCallsToChat) {
  Harness h;
  h.server.push_reply(
      "sendMessage",
      {.status = 429,
       .body = R"({"ok":false,"error_code":429,"description":"x","parameters":{"retry_after":1}})"});
  h.server.set_default("sendMessage", ok_reply(message_json(42, "hi")));
  BotApiOptions options = test_options(h.server.base_url());
  options.flood.enabled = true;
  options.retry.retry_flood_limit = false;
  BotApi& api = h.make_api(options);

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage first{.chat_id = 42, .text = "hi"};
    const auto error = co_await call_expecting<TelegramError>(api, std::move(first));
    CO_ASSERT_TRUE(error.has_value());
    const FloodRequest chat_42{.kind = FloodClass::message, .chat = ChatKey{std::int64_t{42}}};
    EXPECT_TRUE(api.flood_gate().paused_until(chat_42).has_value());

    // The next call to the same chat waits out the pause.
    const auto before = std::chrono::steady_clock::now();
    SendMessage second{.chat_id = 42, .text = "hi"};
    co_await api.send_message(std::move(second));
    EXPECT_GE(std::chrono::steady_clock::now() - before, 900ms);
  });
}

TEST(BotApi, ServerErrorRetriedForGetMe) {
  Harness h;
  h.server.push_reply("getMe", {.status = 500,
                                .body = R"({"ok":false,"error_code":500,)"
                                        R"("description":"Internal Server Error"})"});
  h.server.set_default("getMe", reply_from_file("ok_get_me_01.json", 200));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    GetMe request;
    const User me = co_await api.get_me(std::move(request));
    EXPECT_EQ(me.id, 100000019);
  });
  EXPECT_EQ(h.server.calls_of("getMe"), 2U);
  EXPECT_EQ(api.metrics().retries, 1U);
}

TEST(BotApi, GatewayErrorNotResentForSendMessage) {
  Harness h;
  h.server.push_reply("sendMessage", {.status = 502, .body = "<html>502 Bad Gateway</html>"});
  h.server.set_default("sendMessage", ok_reply(message_json(42, "hi")));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "hi"};
    const auto error = co_await call_expecting<NetworkError>(api, std::move(request));
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->http_status(), 502);
    EXPECT_TRUE(error->maybe_delivered());
    EXPECT_EQ(error->attempts(), 1U);
  });
  EXPECT_EQ(h.server.calls_of("sendMessage"), 1U);
}

TEST(BotApi, ServerErrorResentWhenOptedIn) {
  Harness h;
  h.server.push_reply("sendMessage", {.status = 502, .body = "<html>502 Bad Gateway</html>"});
  h.server.set_default("sendMessage", ok_reply(message_json(42, "hi")));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "hi"};
    const CallOptions options{.resend_maybe_delivered = true};
    const Message sent = co_await api.send_message(std::move(request), options);
    EXPECT_EQ(sent.message_id, 17);
  });
  EXPECT_EQ(h.server.calls_of("sendMessage"), 2U);
}

TEST(BotApi, ResetAfterWriteNotResent) {
  Harness h;
  h.server.push_reply("sendMessage", {.action = http::ConnectionAction::reset});
  h.server.set_default("sendMessage", ok_reply(message_json(42, "hi")));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "hi"};
    const auto error = co_await call_expecting<NetworkError>(api, std::move(request));
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_TRUE(error->maybe_delivered());
    EXPECT_NE(std::string(error->what()).find("may have been delivered"), std::string::npos)
        << error->what();
  });
  EXPECT_EQ(h.server.calls_of("sendMessage"), 1U);
}

TEST(BotApi, ResetAfterWriteRetriedForGetMe) {
  Harness h;
  h.server.push_reply("getMe", {.action = http::ConnectionAction::reset});
  h.server.set_default("getMe", reply_from_file("ok_get_me_01.json", 200));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    GetMe request;
    const User me = co_await api.get_me(std::move(request));
    EXPECT_EQ(me.id, 100000019);
  });
  EXPECT_GE(h.server.calls_of("getMe"), 2U);
}

TEST(BotApi, ConnectionRefusedIsNotSent) {
  asio::io_context io;
  // A port that was free a moment ago and has no listener now.
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();

  BotApiOptions options = test_options("http://127.0.0.1:" + std::to_string(port));
  options.retry.max_attempts = 2;
  {
    BotApi api(io.get_executor(), options);
    run_until_done(io, [&]() -> asio::awaitable<void> {
      SendMessage request{.chat_id = 42, .text = "hi"};
      const auto error = co_await call_expecting<NetworkError>(api, std::move(request));
      CO_ASSERT_TRUE(error.has_value());
      EXPECT_FALSE(error->maybe_delivered());
      EXPECT_EQ(error->kind(), std::optional(http::ErrorKind::connect));
      // Not sent, so even sendMessage is retried.
      EXPECT_EQ(error->attempts(), 2U);
    });
  }
  io.run_for(1s);
}

TEST(BotApi, InvalidResultThrowsParseError) {
  Harness h;
  h.server.set_default("getMe", ok_reply(R"({"id":"not a number","is_bot":true,"first_name":"x"})"));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    GetMe request;
    const auto error = co_await call_expecting<ApiParseError>(api, std::move(request));
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->path(), "result.id");
    EXPECT_EQ(error->attempts(), 1U);
  });
  EXPECT_EQ(h.server.calls_of("getMe"), 1U);
}

TEST(BotApi, UploadsDocumentFromBytes) {
  Harness h;
  h.server.set_default("sendDocument", ok_reply(message_json(42, "")));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendDocument request{
        .chat_id = 42,
        .document = InputFile::from_bytes("report.txt", "hello report", "text/plain"),
        .caption = "monthly report",
    };
    co_await api.send_document(std::move(request));
  });

  ASSERT_EQ(h.server.calls().size(), 1U);
  const auto& call = h.server.calls()[0];
  EXPECT_TRUE(call.content_type.starts_with("multipart/form-data")) << call.content_type;
  const auto parts = http::parse_multipart(call.content_type, call.body);
  std::map<std::string, http::MultipartPart> by_name;
  for (const auto& part : parts) {
    by_name.emplace(part.name, part);
  }
  ASSERT_EQ(by_name.count("chat_id"), 1U);
  EXPECT_EQ(by_name.at("chat_id").data, "42");
  ASSERT_EQ(by_name.count("caption"), 1U);
  EXPECT_EQ(by_name.at("caption").data, "monthly report");
  ASSERT_EQ(by_name.count("document"), 1U);
  EXPECT_EQ(by_name.at("document").filename, std::optional<std::string>("report.txt"));
  EXPECT_EQ(by_name.at("document").content_type, "text/plain");
  EXPECT_EQ(by_name.at("document").data, "hello report");
}

asio::awaitable<void> get_me_once(BotApi& api, int& finished) {
  GetMe request;
  co_await api.get_me(std::move(request));
  ++finished;
}

TEST(BotApi, MaxInFlightRespected) {
  Harness h;
  CannedReply slow = reply_from_file("ok_get_me_01.json", 200);
  slow.delay = 30ms;
  h.server.set_default("getMe", slow);
  BotApiOptions options = test_options(h.server.base_url());
  options.max_in_flight = 4;
  BotApi& api = h.make_api(options);

  constexpr int kCalls = 20;
  int finished = 0;
  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < kCalls; ++i) {
      asio::co_spawn(h.io, get_me_once(api, finished), [](std::exception_ptr error) {
        EXPECT_FALSE(error) << "getMe failed";
      });
    }
    while (finished < kCalls) {
      asio::steady_timer tick(h.io, 5ms);
      co_await tick.async_wait(asio::use_awaitable);
      EXPECT_LE(api.metrics().in_flight, 4U);
    }
  });

  EXPECT_EQ(h.server.calls_of("getMe"), static_cast<std::size_t>(kCalls));
  EXPECT_EQ(h.server.max_concurrent(), 4U);
}

TEST(BotApi, RejectsInFlightAbovePoolSize) {
  asio::io_context io;
  BotApiOptions options = test_options("http://127.0.0.1:1");
  options.max_in_flight = 64;
  options.http.max_connections_per_host = 16;
  EXPECT_THROW(BotApi(io.get_executor(), options), std::invalid_argument);
}

TEST(BotApi, CheckBaseUrlNamesTheProblem) {
  EXPECT_FALSE(check_base_url("https://api.telegram.org").has_value());
  EXPECT_FALSE(check_base_url("http://127.0.0.1:8081").has_value());
  EXPECT_FALSE(check_base_url("https://example.org/telegram-api").has_value());

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not-a-url", "absolute URL"},
      {"ftp://example.org", "http:// or https://"},
      {"http://", "no host"},
      {"http://127.0.0.1:0", "port"},
      {"http://127.0.0.1:70000", "port"},
      {"http://127.0.0.1:99999", "port"},
      {"http://127.0.0.1:4294967297", "port"},
      {"https://example.org/?token=x", "query"},
  };
  for (const auto& [url, expected] : cases) {
    const auto problem = check_base_url(url);
    EXPECT_TRUE(problem.has_value()) << url;
    if (problem) {
      EXPECT_NE(problem->find(expected), std::string::npos) << url << ": " << *problem;
    }
  }
}

TEST(BotApi, RejectsInvalidOptions) {
  asio::io_context io;
  BotApiOptions no_token = test_options("http://127.0.0.1:1");
  no_token.token.clear();
  EXPECT_THROW(BotApi(io.get_executor(), no_token), std::invalid_argument);

  BotApiOptions bad_url = test_options("ftp://example.org");
  EXPECT_THROW(BotApi(io.get_executor(), bad_url), std::invalid_argument);

  BotApiOptions zero_in_flight = test_options("http://127.0.0.1:1");
  zero_in_flight.max_in_flight = 0;
  EXPECT_THROW(BotApi(io.get_executor(), zero_in_flight), std::invalid_argument);
}

TEST(BotApi, BulkViewSendsMessages) {
  Harness h;
  h.server.set_default("sendMessage", ok_reply(message_json(42, "news")));
  BotApiOptions options = test_options(h.server.base_url());
  options.flood.enabled = true;
  BotApi& api = h.make_api(options);

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    SendMessage request{.chat_id = 42, .text = "news"};
    const Message sent = co_await api.bulk().send_message(std::move(request));
    EXPECT_EQ(sent.text, std::optional<std::string>("news"));
  });
  EXPECT_EQ(h.server.calls_of("sendMessage"), 1U);
}

TEST(BotApi, MetricsCountCallsAndErrors) {
  Harness h;
  h.server.set_default("getMe", reply_from_file("ok_get_me_01.json", 200));
  h.server.set_default("sendMessage", reply_from_file("error_403_bot_blocked_01.json", 403));
  BotApi& api = h.make_api();

  run_until_done(h.io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      GetMe request;
      co_await api.get_me(std::move(request));
    }
    SendMessage request{.chat_id = 42, .text = "hi"};
    co_await call_expecting<TelegramError>(api, std::move(request));
  });

  const auto metrics = api.metrics();
  EXPECT_EQ(metrics.calls.at("getMe"), 3U);
  EXPECT_EQ(metrics.calls.at("sendMessage"), 1U);
  EXPECT_EQ(metrics.telegram_errors.at(403), 1U);
  EXPECT_EQ(metrics.retries, 0U);
  EXPECT_EQ(metrics.in_flight, 0U);
}

}  // namespace
}  // namespace sluice::telegram

namespace sluice::telegram {
namespace {

// Collects the what() of every error a call throws.
template <class Request>
asio::awaitable<void> call_collecting(BotApi& api, Request request,
                                      std::vector<std::string>& messages) {
  try {
    co_await api.call(std::move(request));
  } catch (const std::exception& error) {
    messages.emplace_back(error.what());
  }
}

TEST(BotApiRedaction, TokenInNoLogOrError) {
  const std::string token(kToken);
  std::ostringstream captured;
  auto capture = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  capture->set_pattern("%n %l %v");
  auto telegram_logger = runtime::module_logger("sluice.telegram");
  auto http_logger = runtime::module_logger("sluice.http");
  for (const auto& logger : {telegram_logger, http_logger}) {
    logger->sinks().push_back(capture);
    logger->set_level(spdlog::level::trace);
  }
  std::vector<std::string> messages;

  {
    Harness h;
    h.server.set_default("getMe", reply_from_file("ok_get_me_01.json", 200));
    h.server.push_reply("getMe", {.status = 500,
                                  .body = R"({"ok":false,"error_code":500,"description":"x"})"});
    h.server.set_default("sendMessage", reply_from_file("error_400_chat_not_found_01.json", 400));
    h.server.push_reply(
        "sendMessage",
        {.status = 429,
         .body = R"({"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1",)"
                 R"("parameters":{"retry_after":1}})"});
    h.server.set_default("sendPhoto", {.status = 502, .body = "<html>bad gateway</html>"});
    h.server.set_default("sendDocument", {.action = http::ConnectionAction::reset});
    h.server.set_default("getChat", ok_reply(R"({"id":"wrong type"})"));
    h.server.set_default("getFile",
                         {.status = 404,
                          .body = R"({"ok":false,"error_code":404,"description":"Not Found: /bot)" +
                                  token + R"(/getFile"})"});
    BotApiOptions options = test_options(h.server.base_url());
    options.flood.enabled = true;
    BotApi& api = h.make_api(options);

    run_until_done(h.io, [&]() -> asio::awaitable<void> {
      GetMe get_me;  // 500, retried, then ok
      co_await call_collecting(api, std::move(get_me), messages);
      SendMessage send{.chat_id = 42, .text = "hi"};  // 429, retried, then 400
      co_await call_collecting(api, std::move(send), messages);
      SendPhoto photo{.chat_id = 43, .photo = InputFile::from_file_id("AgAD")};  // gateway 502
      co_await call_collecting(api, std::move(photo), messages);
      SendDocument document{.chat_id = 44,
                            .document = InputFile::from_bytes("a.txt", "abc")};  // reset
      co_await call_collecting(api, std::move(document), messages);
      GetChat chat{.chat_id = 45};  // invalid result
      co_await call_collecting(api, std::move(chat), messages);
      GetFile file{.file_id = "x"};  // token in the description
      co_await call_collecting(api, std::move(file), messages);
    });
  }

  {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = probe.local_endpoint().port();
    probe.close();
    BotApiOptions options = test_options("http://127.0.0.1:" + std::to_string(port));
    options.retry.max_attempts = 2;
    {
      BotApi api(io.get_executor(), options);
      run_until_done(io, [&]() -> asio::awaitable<void> {
        GetMe get_me;  // connection refused, retried
        co_await call_collecting(api, std::move(get_me), messages);
      });
    }
    io.run_for(1s);

    BotApiOptions bad_url = options;
    bad_url.base_url = "ftp://example.org/bot" + token;
    try {
      BotApi rejected(io.get_executor(), bad_url);
    } catch (const std::exception& error) {
      messages.emplace_back(error.what());
    }
  }

  // A line that carries the token on purpose goes through the redacting sink.
  telegram_logger->info("request url=https://api.telegram.org/bot{}/getMe", token);
  telegram_logger->flush();
  http_logger->flush();
  for (const auto& logger : {telegram_logger, http_logger}) {
    logger->set_level(spdlog::level::info);
    auto& sinks = logger->sinks();
    sinks.erase(std::remove_if(sinks.begin(), sinks.end(),
                               [&](const auto& sink) {
                                 auto wrapper = std::dynamic_pointer_cast<RedactingSink>(sink);
                                 return sink == capture || (wrapper && wrapper->inner() == capture);
                               }),
                sinks.end());
  }

  const std::string log = captured.str();
  EXPECT_EQ(log.find(token), std::string::npos) << log;
  EXPECT_NE(log.find("/bot<redacted>/getMe"), std::string::npos) << log;
  EXPECT_NE(log.find("retrying call"), std::string::npos) << log;
  EXPECT_NE(log.find("call failed"), std::string::npos) << log;
  EXPECT_EQ(messages.size(), 7U);
  for (const auto& message : messages) {
    EXPECT_EQ(message.find(token), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace sluice::telegram
