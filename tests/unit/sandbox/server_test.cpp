// The sandbox as a server: HTTP routes, long polls, webhook delivery, fault
// injection, the control API and scenario playback, started in-process on
// an ephemeral port.

#include <sluice/sandbox/sandbox.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <sluice/http/client.hpp>
#include <sluice/http/error.hpp>
#include <sluice/http/multipart.hpp>
#include <sluice/http/server.hpp>
#include <sluice/runtime/task_set.hpp>

#include "support.hpp"
#include "support/run_on_loop.hpp"

namespace sluice::sandbox {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

// gtest's ASSERT_* macros use `return`, which a coroutine cannot; these
// record the failure and leave the coroutine instead.
#define CO_ASSERT_TRUE(condition)                   \
  if (!(condition)) {                               \
    ADD_FAILURE() << "assertion failed: " #condition; \
    co_return;                                      \
  }
#define CO_ASSERT_EQ(a, b) \
  EXPECT_EQ(a, b);         \
  if (!((a) == (b))) {     \
    co_return;             \
  }
#define CO_ASSERT_GE(a, b) \
  EXPECT_GE(a, b);         \
  if (!((a) >= (b))) {     \
    co_return;             \
  }

// Upper bound of every test, so a broken test fails instead of hanging.
constexpr auto kMaxTestTime = 30s;
constexpr std::int64_t kAlice = 100000001;
constexpr std::int64_t kBob = 100000002;

SandboxOptions test_options() {
  SandboxOptions options;
  options.engine.first_update_id = 1000;
  Scenario scenario;
  for (auto [id, name] : {std::pair<std::int64_t, char const*>{kAlice, "Alice"}, {kBob, "Bob"}}) {
    User user;
    user.id = id;
    user.first_name = name;
    scenario.users.push_back(user);
  }
  options.scenario = scenario;
  return options;
}

void run_test(std::function<asio::awaitable<void>(asio::io_context&)> body) {
  sluice_test::run_on_loop(kMaxTestTime, body);
}

struct HttpResult {
  unsigned status = 0;
  boost::json::value body;
};

class BotClient {
 public:
  BotClient(asio::any_io_executor executor, Sandbox& sandbox) : sandbox_(sandbox) {
    http::ClientOptions options;
    options.request_timeout = 20s;
    options.verify_peer = true;
    options.extra_ca_pem = sandbox.tls_certificate_pem();
    client_ = std::make_unique<http::Client>(executor, options);
  }

  asio::awaitable<HttpResult> call(std::string method, boost::json::object params = {}) {
    http::ClientRequest request;
    request.method = http::Verb::post;
    request.url = sandbox_.base_url() + "/bot" + sandbox_.engine().bot().token + "/" + method;
    request.body = boost::json::serialize(params);
    request.content_type = "application/json";
    request.operation = method;
    co_return co_await send(std::move(request));
  }

  asio::awaitable<HttpResult> get(std::string path) {
    http::ClientRequest request;
    request.url = sandbox_.base_url() + path;
    co_return co_await send(std::move(request));
  }

  asio::awaitable<HttpResult> post(std::string path, std::string body, std::string content_type) {
    http::ClientRequest request;
    request.method = http::Verb::post;
    request.url = sandbox_.base_url() + path;
    request.body = std::move(body);
    request.content_type = std::move(content_type);
    co_return co_await send(std::move(request));
  }

  asio::awaitable<HttpResult> send(http::ClientRequest request) {
    auto response = co_await client_->request(std::move(request));
    HttpResult result;
    result.status = response.result_int();
    boost::system::error_code ec;
    result.body = boost::json::parse(response.body(), ec);
    if (ec) {
      result.body = boost::json::string(response.body());
    }
    co_return result;
  }

  http::Client& raw() { return *client_; }

 private:
  Sandbox& sandbox_;
  std::unique_ptr<http::Client> client_;
};

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

TEST(SandboxServer, ServesGetMeOverHttp) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), test_options());
    co_await sandbox.start();
    EXPECT_NE(sandbox.port(), 0);
    BotClient bot(context.get_executor(), sandbox);

    auto reply = co_await bot.call("getMe");
    EXPECT_EQ(reply.status, 200u);
    EXPECT_TRUE(reply.body.at("ok").as_bool());
    auto query = co_await bot.get("/bot" + sandbox.engine().bot().token + "/getme?unused=1");
    EXPECT_EQ(query.status, 200u);
    auto wrong = co_await bot.get("/bot1:wrong/getMe");
    EXPECT_EQ(wrong.status, 401u);
    EXPECT_EQ(wrong.body.at("description").as_string(), "Unauthorized");
    auto nowhere = co_await bot.get("/favicon.ico");
    EXPECT_EQ(nowhere.status, 404u);
    EXPECT_EQ(nowhere.body.at("description").as_string(), "Not Found");
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, AcceptsFormAndMultipartBodies) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    auto options = test_options();
    options.engine.flood.enabled = false;
    Sandbox sandbox(context.get_executor(), options);
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);
    auto const prefix = "/bot" + sandbox.engine().bot().token;

    auto form = co_await bot.post(prefix + "/sendMessage", "chat_id=100000001&text=hello+form",
                                  "application/x-www-form-urlencoded");
    EXPECT_EQ(form.status, 200u);
    EXPECT_EQ(form.body.at("result").at("text").as_string(), "hello form");

    http::MultipartBody multipart;
    multipart.add_field("chat_id", "100000001");
    multipart.add_file("document", "notes.txt", "text/plain", "some notes");
    auto body = multipart.finish();
    auto upload = co_await bot.post(prefix + "/sendDocument", std::move(body), multipart.content_type());
    EXPECT_EQ(upload.status, 200u) << boost::json::serialize(upload.body);
    EXPECT_EQ(upload.body.at("result").at("document").at("file_name").as_string(), "notes.txt");

    auto bad_json = co_await bot.post(prefix + "/sendMessage", "{oops", "application/json");
    EXPECT_EQ(bad_json.status, 400u);
    EXPECT_FALSE(bad_json.body.at("ok").as_bool());
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, LongPollReturnsPushedUpdate) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), test_options());
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);

    auto poll = bot.call("getUpdates", {{"timeout", 10}});
    auto push = [&sandbox]() -> asio::awaitable<void> {
      co_await sleep_for(100ms);
      sandbox.push_message(kAlice, 0, "/start");
    };
    auto pusher = push();
    auto started = std::chrono::steady_clock::now();
    auto reply = co_await (std::move(poll) && std::move(pusher));
    auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_LT(elapsed, 5s) << "the poll returns when the update arrives, not at its timeout";
    CO_ASSERT_EQ(reply.body.at("result").as_array().size(), 1u);
    EXPECT_EQ(reply.body.at("result").at(0).at("update_id").as_int64(), 1000);
    EXPECT_EQ(reply.body.at("result").at(0).at("message").at("text").as_string(), "/start");
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, SecondPollerGetsFirstConflict) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), test_options());
    co_await sandbox.start();
    BotClient first(context.get_executor(), sandbox);
    BotClient second(context.get_executor(), sandbox);

    auto older = first.call("getUpdates", {{"timeout", 10}});
    auto newer = [&second]() -> asio::awaitable<HttpResult> {
      co_await sleep_for(100ms);
      boost::json::object params{{"timeout", 1}};
      co_return co_await second.call("getUpdates", std::move(params));
    };
    auto newer_call = newer();
    auto [old_reply, new_reply] = co_await (std::move(older) && std::move(newer_call));
    EXPECT_EQ(old_reply.status, 409u);
    EXPECT_EQ(old_reply.body.at("description").as_string(),
              "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running");
    EXPECT_EQ(new_reply.status, 200u);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, StopEndsWaitingLongPoll) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), test_options());
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);
    auto poll = bot.call("getUpdates", {{"timeout", 50}});
    auto stopper = [&sandbox]() -> asio::awaitable<void> {
      co_await sleep_for(100ms);
      co_await sandbox.stop();
    };
    auto stop_call = stopper();
    auto started = std::chrono::steady_clock::now();
    auto reply = co_await (std::move(poll) && std::move(stop_call));
    EXPECT_EQ(reply.status, 200u);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  });
}

/// A bot's webhook endpoint for tests: records what it receives and answers
/// with the replies a test queues.
class FakeWebhook {
 public:
  explicit FakeWebhook(asio::any_io_executor executor) {
    http::ServerOptions options;
    auto handler = [this](http::Request&& request, http::RequestInfo const&) -> asio::awaitable<http::Reply> {
      return handle(std::move(request));
    };
    server_ = std::make_unique<http::Server>(executor, options, handler);
    server_->listen();
  }

  asio::awaitable<http::Reply> handle(http::Request request) {
    Received received;
    received.body = boost::json::parse(request.body());
    auto secret = request.find("X-Telegram-Bot-Api-Secret-Token");
    if (secret != request.end()) {
      received.secret = std::string(secret->value());
    }
    received.at = std::chrono::steady_clock::now();
    received_.push_back(std::move(received));
    if (delay_ > 0ms) {
      co_await sleep_for(delay_);
    }
    http::Reply reply;
    reply.response.result(200);
    if (!failures_.empty()) {
      auto [status, retry_after] = failures_.front();
      failures_.erase(failures_.begin());
      reply.response.result(status);
      if (retry_after > 0) {
        reply.response.set(boost::beast::http::field::retry_after, std::to_string(retry_after));
      }
    } else if (!answer_.empty()) {
      reply.response.set(boost::beast::http::field::content_type, "application/json");
      reply.response.body() = answer_;
    }
    reply.response.prepare_payload();
    co_return reply;
  }

  struct Received {
    boost::json::value body;
    std::string secret;
    std::chrono::steady_clock::time_point at;
  };

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()) + "/hook"; }
  http::Server& server() { return *server_; }

  std::vector<Received> received_;
  /// Statuses (with Retry-After seconds, 0 for none) for the next replies.
  std::vector<std::pair<unsigned, int>> failures_;
  std::chrono::milliseconds delay_{0};
  std::string answer_;

 private:
  std::unique_ptr<http::Server> server_;
};

TEST(SandboxServer, WebhookDeliversInOrderWithSecret) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    auto options = test_options();
    options.engine.flood.enabled = false;
    Sandbox sandbox(context.get_executor(), options);
    co_await sandbox.start();
    FakeWebhook hook(context.get_executor());
    runtime::TaskSet tasks(context.get_executor(), "test");
    tasks.spawn("webhook", hook.server().run());
    hook.delay_ = 20ms;
    BotClient bot(context.get_executor(), sandbox);

    boost::json::object webhook{{"url", hook.url()}, {"secret_token", "T0ken"}};
    auto set = co_await bot.call("setWebhook", std::move(webhook));
    EXPECT_TRUE(set.body.at("ok").as_bool());
    for (int i = 0; i < 3; ++i) {
      sandbox.push_message(kAlice, 0, "a" + std::to_string(i));
      sandbox.push_message(kBob, 0, "b" + std::to_string(i));
    }
    EXPECT_TRUE(co_await sandbox.wait_for("all_confirmed", 10s));

    CO_ASSERT_EQ(hook.received_.size(), 6u);
    std::vector<std::string> alice_texts;
    for (auto const& received : hook.received_) {
      EXPECT_EQ(received.secret, "T0ken");
      auto const& message = received.body.at("message");
      if (message.at("chat").at("id").as_int64() == kAlice) {
        alice_texts.emplace_back(message.at("text").as_string());
      }
    }
    EXPECT_EQ(alice_texts, (std::vector<std::string>{"a0", "a1", "a2"}));
    // Two chats were served in parallel: the first two POSTs overlap.
    EXPECT_LT(hook.received_[1].at - hook.received_[0].at, 15ms);

    auto info = co_await bot.call("getWebhookInfo");
    EXPECT_EQ(info.body.at("result").at("pending_update_count").as_int64(), 0);
    hook.server().stop(0ms);
    co_await tasks.close(1s);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, WebhookRetriesAndHonoursRetryAfter) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    auto options = test_options();
    options.engine.webhook.retry_initial = 50ms;
    Sandbox sandbox(context.get_executor(), options);
    co_await sandbox.start();
    FakeWebhook hook(context.get_executor());
    runtime::TaskSet tasks(context.get_executor(), "test");
    tasks.spawn("webhook", hook.server().run());
    hook.failures_ = {{500, 0}, {429, 1}};
    BotClient bot(context.get_executor(), sandbox);

    boost::json::object webhook{{"url", hook.url()}};
    co_await bot.call("setWebhook", std::move(webhook));
    sandbox.push_message(kAlice, 0, "first");
    sandbox.push_message(kAlice, 0, "second");
    EXPECT_TRUE(co_await sandbox.wait_for("webhook_failures>=1", 10s));
    auto info = co_await bot.call("getWebhookInfo");
    EXPECT_EQ(info.body.at("result").at("last_error_message").as_string(),
              "Wrong response from the webhook: 500 Internal Server Error");
    EXPECT_TRUE(co_await sandbox.wait_for("all_confirmed", 10s));

    CO_ASSERT_EQ(hook.received_.size(), 4u);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(hook.received_[i].body.at("message").at("text").as_string(), "first") << "attempt " << i;
    }
    EXPECT_EQ(hook.received_[3].body.at("message").at("text").as_string(), "second");
    EXPECT_GE(hook.received_[1].at - hook.received_[0].at, 45ms) << "backoff after the 500";
    EXPECT_GE(hook.received_[2].at - hook.received_[1].at, 950ms) << "Retry-After: 1 after the 429";
    EXPECT_EQ(sandbox.engine().stats().webhook_failures, 2u);
    hook.server().stop(0ms);
    co_await tasks.close(1s);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, WebhookReportsRefusedConnection) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    auto options = test_options();
    options.engine.webhook.retry_initial = 10s;
    Sandbox sandbox(context.get_executor(), options);
    co_await sandbox.start();
    std::uint16_t closed_port = 0;
    {
      FakeWebhook hook(context.get_executor());
      closed_port = hook.server().port();
    }
    BotClient bot(context.get_executor(), sandbox);
    boost::json::object webhook{{"url", "http://127.0.0.1:" + std::to_string(closed_port) + "/hook"}};
    co_await bot.call("setWebhook", std::move(webhook));
    sandbox.push_message(kAlice, 0, "lost?");
    EXPECT_TRUE(co_await sandbox.wait_for("webhook_failures>=1", 10s));
    auto info = co_await bot.call("getWebhookInfo");
    EXPECT_EQ(info.body.at("result").at("last_error_message").as_string(), "Connection refused");
    EXPECT_EQ(info.body.at("result").at("pending_update_count").as_int64(), 1);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, WebhookReplyMethodIsExecuted) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), test_options());
    co_await sandbox.start();
    FakeWebhook hook(context.get_executor());
    runtime::TaskSet tasks(context.get_executor(), "test");
    tasks.spawn("webhook", hook.server().run());
    hook.answer_ = R"({"method":"sendMessage","chat_id":100000001,"text":"from the reply"})";
    BotClient bot(context.get_executor(), sandbox);
    boost::json::object webhook{{"url", hook.url()}};
    co_await bot.call("setWebhook", std::move(webhook));
    sandbox.push_message(kAlice, 0, "hi");
    EXPECT_TRUE(co_await sandbox.wait_for("calls.sendMessage>=1", 10s));
    auto calls = sandbox.engine().calls_json("sendMessage", kAlice);
    CO_ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].at("params").at("text").as_string(), "from the reply");
    hook.server().stop(0ms);
    co_await tasks.close(1s);
    co_await sandbox.stop();
  });
}

SandboxOptions options_with_fault(std::string kind_json) {
  auto options = test_options();
  options.engine.flood.enabled = false;
  options.engine.faults = fault_rules_from_json(boost::json::parse(kind_json));
  return options;
}

TEST(SandboxServer, FaultServerErrorAnswers5xx) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(),
                    options_with_fault(R"([{"method":"getMe","kind":"server_error","max_count":1},
                                           {"method":"getMe","kind":"server_error","status":502,"max_count":1}])"));
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);
    auto first = co_await bot.call("getMe");
    EXPECT_EQ(first.status, 500u);
    EXPECT_EQ(first.body.at("description").as_string(), "Internal Server Error");
    auto second = co_await bot.call("getMe");
    EXPECT_EQ(second.status, 502u);
    EXPECT_TRUE(second.body.is_string()) << "an nginx HTML page, not JSON";
    auto third = co_await bot.call("getMe");
    EXPECT_EQ(third.status, 200u);
    EXPECT_EQ(sandbox.engine().stats().faults_by_kind.at("server_error"), 2u);
    EXPECT_EQ(sandbox.engine().stats().calls, 1u) << "failed calls were not handled";
    co_await sandbox.stop();
  });
}

/// Calls `method` and returns the client error it ends with, or nullopt
/// when a response arrived.
asio::awaitable<std::optional<http::HttpError>> call_expecting_error(BotClient& bot, Sandbox& sandbox,
                                                                     std::string method,
                                                                     std::chrono::milliseconds timeout = 5s) {
  http::ClientRequest request;
  request.method = http::Verb::post;
  request.url = sandbox.base_url() + "/bot" + sandbox.engine().bot().token + "/" + method;
  request.body = R"({"chat_id":100000001,"text":"hello"})";
  request.content_type = "application/json";
  request.timeout = timeout;
  request.idempotent = false;
  request.operation = method;
  try {
    co_await bot.raw().request(std::move(request));
  } catch (http::HttpError const& error) {
    co_return error;
  }
  co_return std::nullopt;
}

TEST(SandboxServer, FaultResetBeforeHandlingDropsCall) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), options_with_fault(R"([{"kind":"reset_before_handling","max_count":1}])"));
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);
    auto error = co_await call_expecting_error(bot, sandbox, "sendMessage");
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), http::ErrorKind::connection_closed) << error->what();
    EXPECT_EQ(sandbox.engine().stats().calls, 0u);
    EXPECT_FALSE(co_await call_expecting_error(bot, sandbox, "sendMessage")) << "the rule fired once";
    EXPECT_EQ(sandbox.engine().stats().calls, 1u);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, FaultResetAfterHandlingKeepsCall) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), options_with_fault(R"([{"kind":"reset_after_handling","max_count":1}])"));
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);
    auto error = co_await call_expecting_error(bot, sandbox, "sendMessage");
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), http::ErrorKind::connection_closed) << error->what();
    EXPECT_EQ(sandbox.engine().stats().calls_by_method.at("sendMessage"), 1u) << "the message was sent";
    EXPECT_EQ(sandbox.engine().stats().faults_by_kind.at("reset_after_handling"), 1u);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, FaultCutBodyBreaksResponse) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), options_with_fault(R"([{"kind":"cut_body","max_count":1}])"));
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);
    auto error = co_await call_expecting_error(bot, sandbox, "sendMessage");
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), http::ErrorKind::connection_closed) << error->what();
    EXPECT_EQ(sandbox.engine().stats().calls_by_method.at("sendMessage"), 1u);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, FaultBlackHoleNeverAnswers) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), options_with_fault(R"([{"kind":"black_hole","max_count":1}])"));
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);
    auto error = co_await call_expecting_error(bot, sandbox, "sendMessage", 300ms);
    CO_ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), http::ErrorKind::timeout) << error->what();
    EXPECT_EQ(sandbox.engine().stats().calls, 0u);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, FaultLatencyDelaysAnswer) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(),
                    options_with_fault(R"([{"method":"getMe","kind":"latency","latency_ms":[100,150]}])"));
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);
    auto started = std::chrono::steady_clock::now();
    auto reply = co_await bot.call("getMe");
    auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(reply.status, 200u);
    EXPECT_GE(elapsed, 100ms);
    EXPECT_EQ(sandbox.engine().stats().faults_by_kind.at("latency"), 1u);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, ControlApiDrivesAndReports) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    Sandbox sandbox(context.get_executor(), test_options());
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);

    auto pushed = co_await bot.post("/sandbox/messages", R"([{"from":100000001,"text":"/start"},
                                                             {"from":100000002,"text":"hi"}])",
                                    "application/json");
    EXPECT_EQ(pushed.status, 200u) << boost::json::serialize(pushed.body);
    EXPECT_EQ(pushed.body.at("result").as_array().size(), 2u);
    auto raw = co_await bot.post("/sandbox/updates", testing::read_text_file(std::string(SLUICE_TEST_DATA_DIR) +
                                                                             "/updates/message_text_02.json"),
                                 "application/json");
    EXPECT_EQ(raw.body.at("result").at(0).as_int64(), 1002);

    auto updates = co_await bot.call("getUpdates");
    EXPECT_EQ(updates.body.at("result").as_array().size(), 3u);
    boost::json::object menu{{"chat_id", kAlice},
                             {"text", "Menu"},
                             {"reply_markup", R"({"inline_keyboard":[[{"text":"Go","callback_data":"go"}]]})"}};
    co_await bot.call("sendMessage", std::move(menu));
    auto pressed = co_await bot.post("/sandbox/callback_queries", R"({"from":100000001})", "application/json");
    EXPECT_EQ(pressed.status, 200u) << boost::json::serialize(pressed.body);
    boost::json::object after{{"offset", 1003}};
    auto with_query = co_await bot.call("getUpdates", std::move(after));
    CO_ASSERT_EQ(with_query.body.at("result").as_array().size(), 1u);
    EXPECT_EQ(with_query.body.at("result").at(0).at("callback_query").at("data").as_string(), "go");

    auto calls = co_await bot.get("/sandbox/calls?method=sendMessage&chat_id=100000001");
    EXPECT_EQ(calls.body.at("result").as_array().size(), 1u);
    auto wait = co_await bot.get("/sandbox/wait?condition=calls.getUpdates%3E%3D2&timeout=2");
    EXPECT_EQ(wait.status, 200u);
    EXPECT_TRUE(wait.body.at("result").at("met").as_bool());
    auto timeout = co_await bot.get("/sandbox/wait?condition=calls.sendPhoto%3E%3D1&timeout=0.1");
    EXPECT_EQ(timeout.status, 408u);
    auto bad = co_await bot.get("/sandbox/wait?condition=bogus");
    EXPECT_EQ(bad.status, 400u);

    auto config = co_await bot.post("/sandbox/config", R"({"flood":{"enabled":false}})", "application/json");
    EXPECT_EQ(config.status, 200u);
    EXPECT_FALSE(config.body.at("result").at("flood").at("enabled").as_bool());
    // Whole numbers go out as integers (Boost.JSON would write 30.0 as 3E1).
    EXPECT_TRUE(config.body.at("result").at("flood").at("global").at("count").is_int64());
    auto bad_config = co_await bot.post("/sandbox/config", R"({"flood":{"global":{"count":-1}}})", "application/json");
    EXPECT_EQ(bad_config.status, 400u);

    auto blocked = co_await bot.post("/sandbox/block", R"({"user_id":100000002})", "application/json");
    EXPECT_EQ(blocked.status, 200u);
    boost::json::object hello{{"chat_id", kBob}, {"text", "hi"}};
    auto to_blocked = co_await bot.call("sendMessage", std::move(hello));
    EXPECT_EQ(to_blocked.status, 403u);

    auto stats = co_await bot.get("/sandbox/stats");
    auto const& result = stats.body.at("result");
    EXPECT_EQ(result.at("updates").at("pushed").as_int64(), 5);
    EXPECT_EQ(result.at("calls").at("by_method").at("sendMessage").as_int64(), 2);
    EXPECT_EQ(result.at("calls").at("errors").at("403").as_int64(), 1);

    auto unknown = co_await bot.get("/sandbox/nothing");
    EXPECT_EQ(unknown.status, 404u);
    auto shutdown = co_await bot.post("/sandbox/shutdown", "", "application/json");
    EXPECT_EQ(shutdown.status, 200u);
    co_await sandbox.wait_stopped();
  });
}

TEST(SandboxServer, ScenarioPlaysEventsAndSimulation) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    auto scenario = parse_scenario(boost::json::parse(R"({
      "users": [{"id": 100000001, "first_name": "Alice"}],
      "events": [
        {"at_ms": 0, "message": {"from": 100000001, "text": "/start"}},
        {"at_ms": 10, "callback_query": {"from": 100000001, "wait_ms": 5000}},
        {"at_ms": 20, "replay": "updates"}
      ],
      "simulate": {"users": 20, "messages_per_user": ["/start", "/subscribe"], "rate_per_second": 500,
                   "blocked_fraction": 0.25, "seed": 7, "start_at_ms": 300}
    })"),
                                   std::filesystem::path(SLUICE_TEST_DATA_DIR));
    SandboxOptions options;
    options.scenario = scenario;
    options.engine.flood.enabled = false;
    Sandbox sandbox(context.get_executor(), options);
    co_await sandbox.start();
    BotClient bot(context.get_executor(), sandbox);

    boost::json::object wait{{"timeout", 5}};
    auto first = co_await bot.call("getUpdates", std::move(wait));
    CO_ASSERT_GE(first.body.at("result").as_array().size(), 1u);
    EXPECT_EQ(first.body.at("result").at(0).at("message").at("text").as_string(), "/start");
    boost::json::object menu{{"chat_id", kAlice},
                             {"text", "Menu"},
                             {"reply_markup", R"({"inline_keyboard":[[{"text":"Go","callback_data":"go"}]]})"}};
    co_await bot.call("sendMessage", std::move(menu));
    // Read until all 40 simulated messages arrived; a blocked user's
    // my_chat_member update is queued together with its last message.
    std::int64_t offset = 0;
    std::size_t simulated = 0;
    std::size_t callbacks = 0;
    std::size_t kicked = 0;
    std::size_t batch_size = 0;
    for (int round = 0; round < 50 && (simulated < 40 || batch_size == 100); ++round) {
      boost::json::object next{{"offset", offset}, {"timeout", 1}};
      auto batch = co_await bot.call("getUpdates", std::move(next));
      batch_size = batch.body.at("result").as_array().size();
      for (auto const& update : batch.body.at("result").as_array()) {
        offset = update.at("update_id").as_int64() + 1;
        auto const& object = update.as_object();
        callbacks += object.contains("callback_query") ? 1 : 0;
        auto const* message = object.if_contains("message");
        auto const* from = message != nullptr ? message->as_object().if_contains("from") : nullptr;
        if (from != nullptr) {
          auto const id = from->at("id").to_number<std::int64_t>();
          simulated += id >= 6'000'000'001 && id < 6'000'000'021 ? 1 : 0;
        }
        if (auto const* change = object.if_contains("my_chat_member")) {
          auto const chat = change->at("chat").at("id").to_number<std::int64_t>();
          bool const simulated_user = chat >= 6'000'000'001 && chat < 6'000'000'021;
          kicked += simulated_user && change->at("new_chat_member").at("status").as_string() == "kicked" ? 1 : 0;
        }
      }
    }
    boost::json::object confirm{{"offset", offset}, {"timeout", 0}};
    auto rest = co_await bot.call("getUpdates", std::move(confirm));
    EXPECT_TRUE(rest.body.at("result").as_array().empty()) << boost::json::serialize(rest.body);
    EXPECT_EQ(simulated, 40u);
    EXPECT_EQ(callbacks, 3u) << "the scripted press and two recorded callback queries";
    EXPECT_GT(kicked, 0u);
    EXPECT_LT(kicked, 20u);
    // 1 message, 1 press, 84 replayed (4 of 88 are kinds the bot did not
    // ask for), 40 simulated messages and one my_chat_member per blocker.
    EXPECT_EQ(sandbox.engine().stats().updates_pushed, 126u + kicked)
        << boost::json::serialize(sandbox.engine().stats_json(Clock::now()));
    EXPECT_EQ(sandbox.engine().stats().updates_filtered, 4u)
        << boost::json::serialize(sandbox.engine().stats_json(Clock::now()));
    EXPECT_EQ(sandbox.engine().pending_updates(), 0u);
    co_await sandbox.stop();
  });
}

TEST(SandboxServer, ServesHttpsWithSelfSignedCertificate) {
  run_test([](asio::io_context& context) -> asio::awaitable<void> {
    auto options = test_options();
    options.tls_self_signed = true;
    Sandbox sandbox(context.get_executor(), options);
    co_await sandbox.start();
    EXPECT_TRUE(sandbox.base_url().starts_with("https://"));
    EXPECT_TRUE(sandbox.tls_certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    BotClient bot(context.get_executor(), sandbox);
    auto reply = co_await bot.call("getMe");
    EXPECT_EQ(reply.status, 200u);
    co_await sandbox.stop();
  });
}

}  // namespace
}  // namespace sluice::sandbox
