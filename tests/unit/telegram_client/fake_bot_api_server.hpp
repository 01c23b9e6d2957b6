#pragma once

// A scriptable Bot API server on 127.0.0.1 for BotApi tests: canned replies
// per method, a record of every request, and a count of requests in
// progress at once.

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <sluice/http/server.hpp>

namespace sluice::telegram::test {

namespace asio = boost::asio;

/// Upper bound of every wait in a test; reaching it means the test hangs.
inline constexpr std::chrono::seconds kMaxWait{30};

struct CannedReply {
  int status = 200;
  std::string body = R"({"ok":true,"result":true})";
  http::ConnectionAction action = http::ConnectionAction::respond;
  /// Time the handler waits before it responds.
  std::chrono::milliseconds delay{0};
};

struct RecordedCall {
  std::string target;
  std::string method;
  std::string content_type;
  std::string body;
};

/// Returns a reply with `"ok": true` and `result_json` as the result.
inline CannedReply ok_reply(std::string_view result_json) {
  return {.status = 200, .body = R"({"ok":true,"result":)" + std::string(result_json) + "}"};
}

/// Returns the JSON of a minimal Message in a private chat.
inline std::string message_json(std::int64_t chat_id, std::string_view text) {
  return R"({"message_id":17,"date":1700000000,"chat":{"id":)" + std::to_string(chat_id) +
         R"(,"type":"private","first_name":"Alice"},"text":")" + std::string(text) + R"("})";
}

class FakeBotApiServer {
 public:
  explicit FakeBotApiServer(asio::any_io_executor executor)
      : executor_(executor),
        server_(executor, http::ServerOptions{.body_limit = 8 * 1024 * 1024},
                [this](http::Request&& request, const http::RequestInfo& info) {
                  return handle(std::move(request), info);
                }) {}

  /// Listens and serves in the background until stop().
  void start() {
    server_.listen();
    asio::co_spawn(executor_, server_.run(), [](std::exception_ptr failure) {
      EXPECT_FALSE(failure) << "FakeBotApiServer: Server::run() threw";
    });
  }

  void stop() { server_.stop(std::chrono::milliseconds(0)); }

  [[nodiscard]] std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(server_.port());
  }

  /// Queues a one-shot reply for `method`; queued replies go first, in order.
  void push_reply(const std::string& method, CannedReply reply) {
    queued_[method].push_back(std::move(reply));
  }

  /// Sets the reply for `method` once its queue is empty.
  void set_default(const std::string& method, CannedReply reply) {
    defaults_[method] = std::move(reply);
  }

  [[nodiscard]] const std::vector<RecordedCall>& calls() const { return calls_; }

  [[nodiscard]] std::size_t calls_of(std::string_view method) const {
    std::size_t count = 0;
    for (const auto& call : calls_) {
      count += call.method == method ? 1 : 0;
    }
    return count;
  }

  [[nodiscard]] std::size_t max_concurrent() const { return max_concurrent_; }

 private:
  CannedReply next_reply(const std::string& method) {
    if (auto it = queued_.find(method); it != queued_.end() && !it->second.empty()) {
      CannedReply reply = std::move(it->second.front());
      it->second.pop_front();
      return reply;
    }
    if (auto it = defaults_.find(method); it != defaults_.end()) {
      return it->second;
    }
    return {.status = 404, .body = R"({"ok":false,"error_code":404,"description":"Not Found"})"};
  }

  asio::awaitable<http::Reply> handle(http::Request request, http::RequestInfo /*info*/) {
    const std::string target(request.target());
    const std::string method = target.substr(target.rfind('/') + 1);
    calls_.push_back({.target = target,
                      .method = method,
                      .content_type = std::string(request[http::Field::content_type]),
                      .body = request.body()});

    ++concurrent_;
    max_concurrent_ = std::max(max_concurrent_, concurrent_);
    CannedReply canned = next_reply(method);
    if (canned.delay > std::chrono::milliseconds::zero()) {
      asio::steady_timer timer(co_await asio::this_coro::executor, canned.delay);
      co_await timer.async_wait(asio::use_awaitable);
    }
    --concurrent_;

    http::Response response{static_cast<http::Status>(canned.status), request.version()};
    response.set(http::Field::content_type, "application/json");
    response.body() = std::move(canned.body);
    response.prepare_payload();
    co_return http::Reply{.response = std::move(response), .action = canned.action};
  }

  asio::any_io_executor executor_;
  http::Server server_;
  std::map<std::string, std::deque<CannedReply>> queued_;
  std::map<std::string, CannedReply> defaults_;
  std::vector<RecordedCall> calls_;
  std::size_t concurrent_ = 0;
  std::size_t max_concurrent_ = 0;
};

/// Runs the coroutine that `make_body()` returns on `io` until it finishes;
/// fails the test if it throws or takes longer than kMaxWait.
template <class MakeBody>
void run_until_done(asio::io_context& io, MakeBody make_body) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, std::move(make_body), [&](std::exception_ptr error) {
    failure = error;
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + kMaxWait;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(done) << "test coroutine did not finish within " << kMaxWait.count() << " s";
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      FAIL() << "test coroutine threw: " << error.what();
    }
  }
}

}  // namespace sluice::telegram::test
