#include <sluice/http/server.hpp>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include "http/deadline.hpp"
#include "test_support.hpp"
#include "tls_support.hpp"

namespace sluice::http::test {
namespace {

Reply text_reply(std::string body, ConnectionAction action = ConnectionAction::respond) {
  Reply reply{.response = Response{Status::ok, 11}, .action = action};
  reply.response.set(Field::content_type, "text/plain");
  reply.response.body() = std::move(body);
  return reply;
}

// Runs `server.run()` in the background; a failure of run() fails the test.
void spawn_server(asio::any_io_executor executor, Server& server) {
  asio::co_spawn(executor, server.run(), [](std::exception_ptr failure) {
    EXPECT_FALSE(failure) << "Server::run() threw";
  });
}

// Waits, polling every 5 ms, until `condition` returns true or kMaxWait passes.
template <class Condition>
asio::awaitable<bool> eventually(Condition condition) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto const give_up = std::chrono::steady_clock::now() + kMaxWait;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) {
      co_return false;
    }
    timer.expires_after(5ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return true;
}

// Reads one response, or returns nothing if none arrives within `limit`.
asio::awaitable<std::optional<Response>> read_response_within(tcp::socket& socket, beast::flat_buffer& buffer,
                                                              std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(socket.get_executor());
  timer.expires_after(limit);
  auto read = read_response(socket, buffer);
  auto wait = timer.async_wait(use_tuple);
  auto outcome = co_await (std::move(read) || std::move(wait));
  if (outcome.index() == 1) {
    co_return std::nullopt;
  }
  auto [error, response] = std::get<0>(std::move(outcome));
  if (error) {
    co_return std::nullopt;
  }
  co_return std::move(response);
}

Handler echo_handler() {
  return [](Request&& request, RequestInfo const& info) -> asio::awaitable<Reply> {
    co_return text_reply(std::string(request.target()) + " conn=" + std::to_string(info.connection_id) +
                         " req=" + std::to_string(info.request_index) + " body=" + request.body());
  };
}

Handler fixed_action_handler(ConnectionAction action, std::string body = "payload", std::size_t cut = 0) {
  return [action, body, cut](Request&&, RequestInfo const&) -> asio::awaitable<Reply> {
    auto reply = text_reply(body, action);
    reply.cut_body_bytes = cut;
    co_return reply;
  };
}

TEST(HttpServer, AnswersGetRequest) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_handler());
    server.listen();
    EXPECT_NE(server.port(), 0);
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_1 = simple_get("/hello");
    co_await write_text(socket, text_1);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);

    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.result(), Status::ok);
    EXPECT_EQ(response.body(), "/hello conn=1 req=1 body=");
    EXPECT_EQ(response[Field::server], "sluice");
    EXPECT_TRUE(response.keep_alive());
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, KeepAliveReusesConnection) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    beast::flat_buffer buffer;
    for (int index = 1; index <= 3; ++index) {
      std::string const text_2 = simple_get("/k");
      co_await write_text(socket, text_2);
      auto [error, response] = co_await read_response(socket, buffer);
      EXPECT_FALSE(error) << error.message();
      EXPECT_EQ(response.body(), "/k conn=1 req=" + std::to_string(index) + " body=");
    }

    EXPECT_EQ(server.stats().connections_accepted, 1u);
    EXPECT_EQ(server.stats().requests, 3u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, PipelinedRequestsAnswerInOrder) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_3 = simple_get("/first") + simple_get("/second");
    co_await write_text(socket, text_3);
    beast::flat_buffer buffer;
    auto [first_error, first] = co_await read_response(socket, buffer);
    auto [second_error, second] = co_await read_response(socket, buffer);

    EXPECT_FALSE(first_error) << first_error.message();
    EXPECT_FALSE(second_error) << second_error.message();
    EXPECT_EQ(first.body(), "/first conn=1 req=1 body=");
    EXPECT_EQ(second.body(), "/second conn=1 req=2 body=");
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, OversizedBodyGets413) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.body_limit = 1000}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const request = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'a');
    co_await write_text(socket, request);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);
    auto rest = co_await read_until_closed(socket, 5s);

    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.result(), Status::payload_too_large);
    EXPECT_FALSE(response.keep_alive());
    EXPECT_EQ(rest.error, asio::error::eof) << rest.error.message();
    EXPECT_EQ(server.stats().requests, 0u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, BodyWithinLimitIsAccepted) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.body_limit = 1000}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const request = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'b');
    co_await write_text(socket, request);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);

    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.result(), Status::ok);
    EXPECT_EQ(response.body(), "/p conn=1 req=1 body=" + std::string(1000, 'b'));
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, MalformedRequestGets400) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_4 = "GET /\x01 what\r\n\r\n";
    co_await write_text(socket, text_4);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);
    auto rest = co_await read_until_closed(socket, 5s);

    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.result(), Status::bad_request);
    EXPECT_EQ(rest.error, asio::error::eof) << rest.error.message();
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, PartialHeaderTimesOutWith408) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.header_timeout = 200ms}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    auto const start = std::chrono::steady_clock::now();
    std::string const text_5 = "GET / HTTP/1.1\r\nHost: x\r\n";
    co_await write_text(socket, text_5);
    auto result = co_await read_until_closed(socket, 5s);
    auto const elapsed = std::chrono::steady_clock::now() - start;

    EXPECT_EQ(result.error, asio::error::eof) << result.error.message();
    EXPECT_TRUE(result.data.starts_with("HTTP/1.1 408")) << result.data;
    EXPECT_GE(elapsed, 190ms);
    EXPECT_LT(elapsed, 2s);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, SilentConnectionClosedAtHeaderTimeout) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.header_timeout = 200ms}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    auto result = co_await read_until_closed(socket, 5s);

    EXPECT_EQ(result.error, asio::error::eof) << result.error.message();
    EXPECT_EQ(result.data, "");
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, SlowBodyTimesOutWith408) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.read_timeout = 300ms}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_6 = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc";
    co_await write_text(socket, text_6);
    auto result = co_await read_until_closed(socket, 5s);

    EXPECT_EQ(result.error, asio::error::eof) << result.error.message();
    EXPECT_TRUE(result.data.starts_with("HTTP/1.1 408")) << result.data;
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, IdleTimeoutClosesKeepAlive) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.idle_timeout = 200ms}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_7 = simple_get("/");
    co_await write_text(socket, text_7);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);
    auto const start = std::chrono::steady_clock::now();
    auto result = co_await read_until_closed(socket, 5s);
    auto const elapsed = std::chrono::steady_clock::now() - start;

    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(result.error, asio::error::eof) << result.error.message();
    EXPECT_EQ(result.data, "");
    EXPECT_LT(elapsed, 2s);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, CloseAfterActionClosesConnection) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, fixed_action_handler(ConnectionAction::close_after));
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_8 = simple_get("/");
    co_await write_text(socket, text_8);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);
    auto rest = co_await read_until_closed(socket, 5s);

    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.body(), "payload");
    EXPECT_FALSE(response.keep_alive());
    EXPECT_EQ(rest.error, asio::error::eof) << rest.error.message();
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, ResetActionSendsRst) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, fixed_action_handler(ConnectionAction::reset));
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_9 = simple_get("/");
    co_await write_text(socket, text_9);
    auto result = co_await read_until_closed(socket, 5s);

    EXPECT_EQ(result.error, asio::error::connection_reset) << result.error.message();
    EXPECT_EQ(result.data, "");
    EXPECT_EQ(server.stats().requests, 1u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, CutBodyActionSendsPartialBody) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{},
                  fixed_action_handler(ConnectionAction::cut_body, std::string(1000, 'x'), 100));
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_10 = simple_get("/");
    co_await write_text(socket, text_10);
    auto result = co_await read_until_closed(socket, 5s);
    auto const header_end = result.data.find("\r\n\r\n");

    EXPECT_EQ(result.error, asio::error::eof) << result.error.message();
    EXPECT_NE(header_end, std::string::npos) << result.data;
    EXPECT_NE(result.data.find("Content-Length: 1000"), std::string::npos) << result.data;
    if (header_end != std::string::npos) {
      EXPECT_EQ(result.data.size() - header_end - 4, 100u);
    }
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, BlackHoleActionNeverAnswers) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.idle_timeout = 100ms, .write_timeout = 100ms},
                  fixed_action_handler(ConnectionAction::black_hole));
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_11 = simple_get("/");
    co_await write_text(socket, text_11);
    auto result = co_await read_until_closed(socket, 500ms);
    EXPECT_EQ(result.error, asio::error::timed_out) << result.error.message();
    EXPECT_EQ(result.data, "");
    EXPECT_EQ(server.stats().connections_open, 1u);

    socket.close();
    auto const condition_12 = [&] { return server.stats().connections_open == 0; };
    bool const closed = co_await eventually(condition_12);
    EXPECT_TRUE(closed);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, StopClosesBlackHoledConnection) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, fixed_action_handler(ConnectionAction::black_hole));
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_13 = simple_get("/");
    co_await write_text(socket, text_13);
    auto const condition_14 = [&] { return server.stats().requests == 1; };
    bool const handled = co_await eventually(condition_14);
    server.stop(10s);
    auto result = co_await read_until_closed(socket, 5s);
    co_await server.wait_stopped();

    EXPECT_TRUE(handled);
    EXPECT_EQ(result.error, asio::error::eof) << result.error.message();
  });
}

TEST(HttpServer, AcceptHookResetsBeforeRead) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    int hook_calls = 0;
    ServerOptions options{.on_accept = [&](RequestInfo const& info) {
      ++hook_calls;
      EXPECT_EQ(info.connection_id, 1u);
      return AcceptAction::reset;
    }};
    Server server(executor, std::move(options), echo_handler());
    server.listen();
    spawn_server(executor, server);

    // The RST may arrive before the client's connect completes.
    tcp::socket socket(executor);
    tcp::endpoint const endpoint{asio::ip::make_address("127.0.0.1"), server.port()};
    auto [connect_error] = co_await socket.async_connect(endpoint, use_tuple);
    ReadUntilClosed result{.error = connect_error, .data = {}};
    if (!connect_error) {
      result = co_await read_until_closed(socket, 5s);
    }
    auto const condition_15 = [&] { return hook_calls == 1; };
    bool const finished = co_await eventually(condition_15);

    EXPECT_EQ(result.error, asio::error::connection_reset) << result.error.message();
    EXPECT_TRUE(finished);
    EXPECT_EQ(hook_calls, 1);
    EXPECT_EQ(server.stats().requests, 0u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, AcceptHookBlackHoleNeverReads) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    ServerOptions options{.on_accept = [](RequestInfo const&) { return AcceptAction::black_hole; }};
    Server server(executor, std::move(options), echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_16 = simple_get("/");
    co_await write_text(socket, text_16);
    auto result = co_await read_until_closed(socket, 300ms);

    EXPECT_EQ(result.error, asio::error::timed_out) << result.error.message();
    EXPECT_EQ(server.stats().requests, 0u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, HandlerExceptionGives500) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Handler handler = [](Request&&, RequestInfo const&) -> asio::awaitable<Reply> {
      throw std::runtime_error("handler failure for the test");
      co_return text_reply("unreachable");
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_17 = simple_get("/");
    co_await write_text(socket, text_17);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);

    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.result(), Status::internal_server_error);
    EXPECT_FALSE(response.keep_alive());
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, ExpectContinueGetsInterimResponse) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_18 = "POST /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    co_await write_text(socket, text_18);
    std::string interim(25, '\0');
    co_await asio::async_read(socket, asio::buffer(interim), asio::use_awaitable);
    std::string const text_19 = "12345";
    co_await write_text(socket, text_19);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);

    EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.body(), "/c conn=1 req=1 body=12345");
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, GracefulStopFinishesInFlightRequest) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    detail::Event started(executor);
    bool handler_started = false;
    Handler handler = [&](Request&&, RequestInfo const&) -> asio::awaitable<Reply> {
      handler_started = true;
      started.notify_all();
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(200ms);
      co_await timer.async_wait(asio::use_awaitable);
      co_return text_reply("finished");
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    auto const port = server.port();
    spawn_server(executor, server);

    auto socket = co_await connect_to(port);
    std::string const text_20 = simple_get("/slow");
    co_await write_text(socket, text_20);
    while (!handler_started) {
      co_await started.wait();
    }
    server.stop(5s);
    tcp::socket late(executor);
    tcp::endpoint const endpoint{asio::ip::make_address("127.0.0.1"), port};
    auto [connect_error] = co_await late.async_connect(endpoint, use_tuple);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);
    co_await server.wait_stopped();

    EXPECT_EQ(connect_error, asio::error::connection_refused) << connect_error.message();
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.body(), "finished");
    EXPECT_FALSE(response.keep_alive());
  });
}

TEST(HttpServer, StopDeadlineCancelsHandler) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    bool handler_cancelled = false;
    bool handler_started = false;
    Handler handler = [&](Request&&, RequestInfo const&) -> asio::awaitable<Reply> {
      handler_started = true;
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(std::chrono::hours(1));
      try {
        co_await timer.async_wait(asio::use_awaitable);
      } catch (boost::system::system_error const& error) {
        handler_cancelled = error.code() == asio::error::operation_aborted;
        throw;
      }
      co_return text_reply("unreachable");
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_21 = simple_get("/forever");
    co_await write_text(socket, text_21);
    auto const condition_22 = [&] { return handler_started; };
    bool const started = co_await eventually(condition_22);
    auto const stop_time = std::chrono::steady_clock::now();
    server.stop(100ms);
    auto result = co_await read_until_closed(socket, 5s);
    co_await server.wait_stopped();
    auto const elapsed = std::chrono::steady_clock::now() - stop_time;

    EXPECT_TRUE(started);
    EXPECT_TRUE(handler_cancelled);
    EXPECT_EQ(result.data, "");
    EXPECT_NE(result.error, asio::error::timed_out);
    EXPECT_LT(elapsed, 2s);
  });
}

TEST(HttpServer, StopClosesIdleConnectionsAtOnce) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto socket = co_await connect_to(server.port());
    std::string const text_23 = simple_get("/");
    co_await write_text(socket, text_23);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);
    auto const stop_time = std::chrono::steady_clock::now();
    server.stop(10s);
    auto result = co_await read_until_closed(socket, 5s);
    co_await server.wait_stopped();
    auto const elapsed = std::chrono::steady_clock::now() - stop_time;

    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(result.error, asio::error::eof) << result.error.message();
    EXPECT_LT(elapsed, 1s);
  });
}

TEST(HttpServer, MaxConnectionsDelaysAccept) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.max_connections = 1}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    auto first = co_await connect_to(server.port());
    std::string const text_24 = simple_get("/a");
    co_await write_text(first, text_24);
    beast::flat_buffer first_buffer;
    auto [first_error, first_response] = co_await read_response(first, first_buffer);
    auto second = co_await connect_to(server.port());
    std::string const text_25 = simple_get("/b");
    co_await write_text(second, text_25);
    beast::flat_buffer second_buffer;
    auto early = co_await read_response_within(second, second_buffer, 300ms);
    first.close();
    auto late = co_await read_response_within(second, second_buffer, 5s);

    EXPECT_FALSE(first_error) << first_error.message();
    EXPECT_FALSE(early.has_value());
    EXPECT_TRUE(late.has_value());
    if (late) {
      EXPECT_EQ(late->body(), "/b conn=2 req=1 body=");
    }
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpServer, TlsServerAnswersHttps) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto const& pki = test_pki();
    asio::ssl::context server_tls(asio::ssl::context::tls_server);
    server_tls.use_certificate_chain(asio::buffer(pki.server_cert_pem));
    server_tls.use_private_key(asio::buffer(pki.server_key_pem), asio::ssl::context::pem);
    Handler handler = [](Request&& request, RequestInfo const& info) -> asio::awaitable<Reply> {
      co_return text_reply(std::string("tls=") + (info.tls ? "yes" : "no"));
    };
    Server server(executor, ServerOptions{.tls = &server_tls}, handler);
    server.listen();
    spawn_server(executor, server);

    asio::ssl::context client_tls(asio::ssl::context::tls_client);
    client_tls.add_certificate_authority(asio::buffer(pki.ca_cert_pem));
    client_tls.set_verify_mode(asio::ssl::verify_peer);
    asio::ssl::stream<tcp::socket> stream(co_await connect_to(server.port()), client_tls);
    stream.set_verify_callback(asio::ssl::host_name_verification("localhost"));
    co_await stream.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    Request request{Verb::get, "/", 11};
    request.set(Field::host, "localhost");
    co_await beast::http::async_write(stream, request, asio::use_awaitable);
    beast::flat_buffer buffer;
    Response response;
    co_await beast::http::async_read(stream, buffer, response, asio::use_awaitable);

    EXPECT_EQ(response.result(), Status::ok);
    EXPECT_EQ(response.body(), "tls=yes");
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

// NOTE: disabled because UBSan (g++ 12) reports an invalid vptr inside
// Asio's scheduler when this test exhausts file descriptors; not yet
// diagnosed.
TEST(HttpServer, DISABLED_DescriptorExhaustionBacksOff) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_handler());
    server.listen();
    spawn_server(executor, server);

    // The client socket exists before the limit drops, so connecting needs no
    // new descriptor while the server's accept has none left (EMFILE).
    tcp::socket socket(executor);
    socket.open(tcp::v4());
    // RLIMIT_NOFILE bounds descriptor numbers, not their count, so the limit
    // drops to just above the highest open descriptor and /dev/null fills
    // the free numbers below it.
    rlimit original{};
    getrlimit(RLIMIT_NOFILE, &original);
    int highest = 0;
    for (auto const& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      highest = std::max(highest, std::stoi(entry.path().filename().string()));
    }
    rlimit lowered = original;
    lowered.rlim_cur = static_cast<rlim_t>(highest + 1);
    setrlimit(RLIMIT_NOFILE, &lowered);
    std::vector<int> fillers;
    for (int i = 0; i < 100'000; ++i) {
      int const filler = ::open("/dev/null", O_RDONLY);
      if (filler < 0) {
        break;
      }
      fillers.push_back(filler);
    }
    tcp::endpoint const endpoint{asio::ip::make_address("127.0.0.1"), server.port()};
    auto [connect_error] = co_await socket.async_connect(endpoint, use_tuple);
    asio::steady_timer timer(executor);
    timer.expires_after(500ms);
    co_await timer.async_wait(asio::use_awaitable);
    auto const errors_while_exhausted = server.stats().accept_errors;
    for (int const filler : fillers) {
      ::close(filler);
    }
    setrlimit(RLIMIT_NOFILE, &original);

    std::string const request = simple_get("/after");
    co_await write_text(socket, request);
    beast::flat_buffer buffer;
    auto [error, response] = co_await read_response(socket, buffer);

    EXPECT_FALSE(connect_error) << connect_error.message();
    EXPECT_GE(errors_while_exhausted, 1u);
    // A back-off of 100 ms allows about 5 attempts in 500 ms; a spinning loop
    // would make thousands.
    EXPECT_LE(errors_while_exhausted, 10u);
    EXPECT_FALSE(error) << error.message();
    EXPECT_EQ(response.body(), "/after conn=1 req=1 body=");
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

}  // namespace
}  // namespace sluice::http::test
