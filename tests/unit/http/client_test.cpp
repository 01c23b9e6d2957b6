#include <sluice/http/client.hpp>

#include <algorithm>
#include <optional>
#include <string>

#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <gtest/gtest.h>

#include <sluice/http/multipart.hpp>
#include <sluice/http/server.hpp>

#include "http/deadline.hpp"
#include "test_support.hpp"
#include "tls_support.hpp"

namespace sluice::http::test {
namespace {

using Clock = std::chrono::steady_clock;

// 10,000 round trips take about 2 s on an idle machine, but a sanitizer build
// on a loaded machine with two cores took over 120 s.
constexpr std::chrono::seconds kLongTestMaxWait{280};

Reply ok_reply(std::string body) {
  Reply reply{.response = Response{Status::ok, 11}, .action = ConnectionAction::respond};
  reply.response.set(Field::content_type, "text/plain");
  reply.response.body() = std::move(body);
  return reply;
}

Handler echo_body_handler() {
  return [](Request&& request, RequestInfo const&) -> asio::awaitable<Reply> {
    co_return ok_reply("echo:" + request.body());
  };
}

void spawn_server(asio::any_io_executor executor, Server& server) {
  asio::co_spawn(executor, server.run(), [](std::exception_ptr failure) {
    EXPECT_FALSE(failure) << "Server::run() threw";
  });
}

std::string url_for(std::uint16_t port, std::string const& path = "/", std::string const& host = "127.0.0.1",
                    std::string const& scheme = "http") {
  return scheme + "://" + host + ":" + std::to_string(port) + path;
}

template <class Condition>
asio::awaitable<bool> eventually(Condition condition) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  auto const give_up = Clock::now() + kMaxWait;
  while (!condition()) {
    if (Clock::now() > give_up) {
      co_return false;
    }
    timer.expires_after(5ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return true;
}

// Sends a request and returns the HttpError it throws, or nothing.
asio::awaitable<std::optional<HttpError>> request_error(Client& client, ClientRequest request) {
  try {
    co_await client.request(std::move(request));
  } catch (HttpError const& error) {
    co_return error;
  }
  co_return std::nullopt;
}

// Reads a request head (up to the empty line) from a raw socket.
asio::awaitable<std::string> read_head(tcp::socket& socket, std::string& buffer) {
  auto const size = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n\r\n",
                                                    asio::use_awaitable);
  std::string head = buffer.substr(0, size);
  buffer.erase(0, size);
  co_return head;
}

TEST(HttpClient, OneConnectionServesTenThousandCalls) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_body_handler());
    server.listen();
    spawn_server(executor, server);
    Client client(executor);

    int failures = 0;
    for (int i = 0; i < 10'000; ++i) {
      ClientRequest request{.method = Verb::post,
                            .url = url_for(server.port(), "/botTOKEN/sendMessage"),
                            .body = R"({"chat_id":1,"text":"hi"})",
                            .content_type = "application/json",
                            .operation = "sendMessage"};
      auto response = co_await client.request(std::move(request));
      if (response.body() != R"(echo:{"chat_id":1,"text":"hi"})") {
        ++failures;
      }
    }

    EXPECT_EQ(failures, 0);
    EXPECT_EQ(server.stats().connections_accepted, 1u);
    EXPECT_EQ(server.stats().requests, 10'000u);
    EXPECT_EQ(client.stats().connections_opened, 1u);
    EXPECT_EQ(client.stats().connections_reused, 9'999u);
    server.stop(0ms);
    co_await server.wait_stopped();
  }, kLongTestMaxWait);
}

asio::awaitable<void> call_and_count(Client& client, std::string url, int& succeeded, int& finished,
                                     detail::Event& done) {
  try {
    ClientRequest request{.url = std::move(url)};
    auto response = co_await client.request(std::move(request));
    if (response.result() == Status::ok) {
      ++succeeded;
    }
  } catch (std::exception const& error) {
    ADD_FAILURE() << "request failed: " << error.what();
  }
  ++finished;
  done.notify_all();
}

TEST(HttpClient, PoolLimitHoldsUnderConcurrency) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    int in_handler = 0;
    int max_in_handler = 0;
    Handler handler = [&](Request&&, RequestInfo const&) -> asio::awaitable<Reply> {
      ++in_handler;
      max_in_handler = std::max(max_in_handler, in_handler);
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(2ms);
      co_await timer.async_wait(asio::use_awaitable);
      --in_handler;
      co_return ok_reply("ok");
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);
    Client client(executor, ClientOptions{.max_connections_per_host = 4});

    constexpr int kRequests = 200;
    int succeeded = 0;
    int finished = 0;
    detail::Event done(executor);
    for (int i = 0; i < kRequests; ++i) {
      asio::co_spawn(executor, call_and_count(client, url_for(server.port()), succeeded, finished, done),
                     [](std::exception_ptr) {});
    }
    while (finished < kRequests) {
      co_await done.wait();
    }

    EXPECT_EQ(succeeded, kRequests);
    EXPECT_EQ(server.stats().connections_accepted, 4u);
    EXPECT_EQ(max_in_handler, 4);
    EXPECT_EQ(client.stats().connections_opened, 4u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpClient, IdleTimeoutClosesIdleConnection) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{}, echo_body_handler());
    server.listen();
    spawn_server(executor, server);
    Client client(executor, ClientOptions{.idle_timeout = 100ms});

    ClientRequest first{.url = url_for(server.port())};
    co_await client.request(std::move(first));
    auto const condition_1 = [&] { return server.stats().connections_open == 0; };
    bool const closed = co_await eventually(condition_1);
    ClientRequest second{.url = url_for(server.port())};
    auto response = co_await client.request(std::move(second));

    EXPECT_TRUE(closed);
    EXPECT_EQ(response.result(), Status::ok);
    EXPECT_EQ(server.stats().connections_accepted, 2u);
    EXPECT_EQ(client.stats().connections_opened, 2u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpClient, SilentServerTimesOutAtDeadline) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Handler handler = [](Request&&, RequestInfo const&) -> asio::awaitable<Reply> {
      co_return Reply{.response = Response{}, .action = ConnectionAction::black_hole};
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);
    Client client(executor);

    auto const start = Clock::now();
    ClientRequest request{.method = Verb::post, .url = url_for(server.port()), .body = "{}", .timeout = 300ms};
    auto error = co_await request_error(client, std::move(request));
    auto const elapsed = Clock::now() - start;

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::timeout) << error->what();
      EXPECT_EQ(error->delivery(), Delivery::maybe_delivered) << error->what();
    }
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LE(elapsed, 500ms);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpClient, BlackHoledAcceptorTimesOut) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    // Listens but never accepts: the kernel completes the handshake and
    // buffers the request, and nothing ever responds.
    tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
    Client client(executor);

    auto const start = Clock::now();
    ClientRequest request{.url = url_for(acceptor.local_endpoint().port()), .timeout = 300ms};
    auto error = co_await request_error(client, std::move(request));
    auto const elapsed = Clock::now() - start;

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::timeout) << error->what();
    }
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LE(elapsed, 500ms);
  });
}

TEST(HttpClient, RefusedConnectionIsConnectError) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    std::uint16_t port = 0;
    {
      tcp::acceptor probe(executor, {asio::ip::make_address("127.0.0.1"), 0});
      port = probe.local_endpoint().port();
    }
    Client client(executor);

    ClientRequest request{.url = url_for(port), .operation = "getMe"};
    auto error = co_await request_error(client, std::move(request));

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::connect) << error->what();
      EXPECT_EQ(error->delivery(), Delivery::not_sent);
      EXPECT_EQ(error->cause(), asio::error::connection_refused) << error->cause().message();
      EXPECT_EQ(error->operation(), "getMe");
      EXPECT_EQ(error->host(), "127.0.0.1:" + std::to_string(port));
    }
  });
}

TEST(HttpClient, ErrorMessageOmitsUrlPath) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    std::uint16_t port = 0;
    {
      tcp::acceptor probe(executor, {asio::ip::make_address("127.0.0.1"), 0});
      port = probe.local_endpoint().port();
    }
    Client client(executor);

    ClientRequest request{.url = url_for(port, "/bot123:SECRET/getMe"), .operation = "getMe"};
    auto error = co_await request_error(client, std::move(request));

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(std::string(error->what()).find("SECRET"), std::string::npos) << error->what();
    }
  });
}

// Responds to the first request on the first connection, closes that
// connection when the second request arrives, then responds on a new one.
asio::awaitable<void> close_second_request_server(tcp::acceptor& acceptor, int& connections) {
  std::string const answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  auto first = co_await acceptor.async_accept(asio::use_awaitable);
  ++connections;
  std::string buffer;
  co_await read_head(first, buffer);
  co_await write_text(first, answer);
  co_await read_head(first, buffer);
  first.close();

  auto second = co_await acceptor.async_accept(asio::use_awaitable);
  ++connections;
  std::string second_buffer;
  co_await read_head(second, second_buffer);
  co_await write_text(second, answer);
  co_await read_until_closed(second, 5s);
}

TEST(HttpClient, StaleConnectionRetriedForIdempotentRequest) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
    int connections = 0;
    asio::co_spawn(executor, close_second_request_server(acceptor, connections), [](std::exception_ptr failure) {
      EXPECT_FALSE(failure) << "the test server threw";
    });
    Client client(executor);
    auto const url = url_for(acceptor.local_endpoint().port());

    ClientRequest first{.url = url};
    auto first_response = co_await client.request(std::move(first));
    ClientRequest second{.url = url};
    auto second_response = co_await client.request(std::move(second));

    EXPECT_EQ(first_response.body(), "ok");
    EXPECT_EQ(second_response.body(), "ok");
    EXPECT_EQ(connections, 2);
    EXPECT_EQ(client.stats().retries, 1u);
    EXPECT_EQ(client.stats().connections_opened, 2u);
  });
}

TEST(HttpClient, StaleConnectionNotRetriedForPost) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
    int connections = 0;
    asio::co_spawn(executor, close_second_request_server(acceptor, connections), [](std::exception_ptr) {});
    Client client(executor);
    auto const url = url_for(acceptor.local_endpoint().port());

    ClientRequest first{.url = url};
    co_await client.request(std::move(first));
    ClientRequest second{.method = Verb::post, .url = url, .body = "x"};
    auto error = co_await request_error(client, std::move(second));

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::connection_closed) << error->what();
      EXPECT_EQ(error->delivery(), Delivery::maybe_delivered);
    }
    EXPECT_EQ(client.stats().retries, 0u);
    acceptor.close();
  });
}

TEST(HttpClient, ServerClosedIdleConnectionIsDropped) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.idle_timeout = 50ms}, echo_body_handler());
    server.listen();
    spawn_server(executor, server);
    Client client(executor);

    ClientRequest first{.url = url_for(server.port())};
    co_await client.request(std::move(first));
    auto const condition_2 = [&] { return server.stats().connections_open == 0; };
    bool const closed = co_await eventually(condition_2);
    ClientRequest second{.url = url_for(server.port())};
    auto response = co_await client.request(std::move(second));

    EXPECT_TRUE(closed);
    EXPECT_EQ(response.result(), Status::ok);
    EXPECT_EQ(client.stats().stale_connections_dropped, 1u);
    EXPECT_EQ(client.stats().retries, 0u);
    EXPECT_EQ(client.stats().connections_opened, 2u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

asio::awaitable<void> answer_once_raw(tcp::acceptor& acceptor, std::string answer) {
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  std::string buffer;
  co_await read_head(socket, buffer);
  co_await write_text(socket, answer);
  co_await read_until_closed(socket, 5s);
}

// Sends `pieces` as the response to one request, 20 ms apart.
asio::awaitable<void> answer_in_pieces(tcp::acceptor& acceptor, std::vector<std::string> pieces) {
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  std::string buffer;
  co_await read_head(socket, buffer);
  asio::steady_timer pause(socket.get_executor());
  for (auto const& piece : pieces) {
    co_await write_text(socket, piece);
    pause.expires_after(20ms);
    co_await pause.async_wait(asio::use_awaitable);
  }
  co_await read_until_closed(socket, 5s);
}

TEST(HttpClient, ResponseInPiecesIsReadWhole) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
    std::vector<std::string> pieces = {"HTTP/1.1 200 OK\r\nContent-Le", "ngth: 10\r\n\r\nhello", "world"};
    asio::co_spawn(executor, answer_in_pieces(acceptor, std::move(pieces)), [](std::exception_ptr) {});
    Client client(executor);

    ClientRequest request{.url = url_for(acceptor.local_endpoint().port())};
    auto response = co_await client.request(std::move(request));

    EXPECT_EQ(response.result_int(), 200);
    EXPECT_EQ(response.body(), "helloworld");
  });
}

TEST(HttpClient, LargeBodiesTravelBothWays) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Server server(executor, ServerOptions{.body_limit = 16 * 1024 * 1024}, echo_body_handler());
    server.listen();
    spawn_server(executor, server);
    Client client(executor);

    std::string body(8 * 1024 * 1024, 'b');
    body.back() = 'e';
    ClientRequest request{.method = Verb::post, .url = url_for(server.port()), .body = body};
    auto response = co_await client.request(std::move(request));

    EXPECT_EQ(response.result_int(), 200);
    EXPECT_EQ(response.body().size(), body.size() + 5);
    EXPECT_TRUE(response.body() == "echo:" + body) << "the echoed body differs";
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpClient, MalformedResponseIsReported) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    tcp::acceptor acceptor(executor, {asio::ip::make_address("127.0.0.1"), 0});
    asio::co_spawn(executor, answer_once_raw(acceptor, "HTTP/1.1 2x0 Broken\r\nContent-Length: 0\r\n\r\n"),
                   [](std::exception_ptr) {});
    Client client(executor);

    ClientRequest request{.url = url_for(acceptor.local_endpoint().port())};
    auto error = co_await request_error(client, std::move(request));

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::malformed_response) << error->what();
      EXPECT_EQ(error->delivery(), Delivery::maybe_delivered);
    }
  });
}

TEST(HttpClient, OversizedResponseIsReported) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Handler handler = [](Request&&, RequestInfo const&) -> asio::awaitable<Reply> {
      co_return ok_reply(std::string(10'000, 'z'));
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);
    Client client(executor, ClientOptions{.response_body_limit = 1000});

    ClientRequest request{.url = url_for(server.port())};
    auto error = co_await request_error(client, std::move(request));

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::response_too_large) << error->what();
    }
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpClient, WaitForPoolSlotHonoursDeadline) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    detail::Event release(executor);
    bool released = false;
    Handler handler = [&](Request&&, RequestInfo const&) -> asio::awaitable<Reply> {
      while (!released) {
        co_await release.wait();
      }
      co_return ok_reply("late");
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);
    Client client(executor, ClientOptions{.max_connections_per_host = 1});

    int succeeded = 0;
    int finished = 0;
    detail::Event done(executor);
    asio::co_spawn(executor, call_and_count(client, url_for(server.port()), succeeded, finished, done),
                   [](std::exception_ptr) {});
    auto const condition_3 = [&] { return server.stats().requests == 1; };
    bool const busy = co_await eventually(condition_3);
    ClientRequest waiting{.url = url_for(server.port()), .timeout = 200ms};
    auto error = co_await request_error(client, std::move(waiting));
    released = true;
    release.notify_all();
    while (finished < 1) {
      co_await done.wait();
    }

    EXPECT_TRUE(busy);
    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::timeout) << error->what();
      EXPECT_EQ(error->delivery(), Delivery::not_sent);
    }
    EXPECT_EQ(succeeded, 1);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpClient, DedicatedLaneKeepsStandardSlotFree) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    detail::Event release(executor);
    bool released = false;
    Handler handler = [&](Request&& request, RequestInfo const&) -> asio::awaitable<Reply> {
      if (request.target() == "/getUpdates") {
        while (!released) {
          co_await release.wait();
        }
      }
      co_return ok_reply(std::string(request.target()));
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);
    Client client(executor, ClientOptions{.max_connections_per_host = 1});

    int succeeded = 0;
    int finished = 0;
    detail::Event done(executor);
    auto long_poll = [&]() -> asio::awaitable<void> {
      ClientRequest request{.url = url_for(server.port(), "/getUpdates"), .lane = Lane::dedicated};
      auto response = co_await client.request(std::move(request));
      succeeded += response.body() == "/getUpdates" ? 1 : 0;
      ++finished;
      done.notify_all();
    };
    asio::co_spawn(executor, long_poll, [](std::exception_ptr failure) { EXPECT_FALSE(failure); });
    auto const condition_4 = [&] { return server.stats().requests == 1; };
    bool const polling = co_await eventually(condition_4);
    ClientRequest call{.url = url_for(server.port(), "/sendMessage"), .timeout = 2s};
    auto response = co_await client.request(std::move(call));
    released = true;
    release.notify_all();
    while (finished < 1) {
      co_await done.wait();
    }

    EXPECT_TRUE(polling);
    EXPECT_EQ(response.body(), "/sendMessage");
    EXPECT_EQ(succeeded, 1);
    EXPECT_EQ(server.stats().connections_accepted, 2u);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpClient, MultipartUploadRoundTrip) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    std::vector<MultipartPart> received;
    Handler handler = [&](Request&& request, RequestInfo const&) -> asio::awaitable<Reply> {
      received = parse_multipart(request[Field::content_type], request.body());
      co_return ok_reply("parts=" + std::to_string(received.size()));
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);
    Client client(executor);

    std::string const photo("\x89PNG\r\n\x1a\n\0\r\n--binary--", 21);
    MultipartBody body;
    body.add_field("chat_id", "42");
    body.add_field("caption", "a \"quoted\" caption");
    body.add_file("photo", "cat.png", "image/png", photo);
    std::string encoded = body.finish();
    ClientRequest request{.method = Verb::post,
                          .url = url_for(server.port(), "/sendPhoto"),
                          .body = std::move(encoded),
                          .content_type = body.content_type(),
                          .operation = "sendPhoto"};
    auto response = co_await client.request(std::move(request));

    EXPECT_EQ(response.body(), "parts=3");
    EXPECT_EQ(received.size(), 3u);
    if (received.size() == 3) {
      EXPECT_EQ(received[0].name, "chat_id");
      EXPECT_EQ(received[0].data, "42");
      EXPECT_FALSE(received[0].filename.has_value());
      EXPECT_EQ(received[1].data, "a \"quoted\" caption");
      EXPECT_EQ(received[2].name, "photo");
      EXPECT_EQ(received[2].filename.value_or(""), "cat.png");
      EXPECT_EQ(received[2].content_type, "image/png");
      EXPECT_EQ(received[2].data, photo);
    }
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

struct TlsServerFixture {
  asio::ssl::context context{asio::ssl::context::tls_server};
  TlsServerFixture(std::string const& cert, std::string const& key) {
    context.use_certificate_chain(asio::buffer(cert));
    context.use_private_key(asio::buffer(key), asio::ssl::context::pem);
  }
};

// Sends one GET to a TLS server using `cert`/`key` and returns the error, if any.
asio::awaitable<std::optional<HttpError>> tls_request(std::string const& cert, std::string const& key,
                                                      ClientOptions const& options, std::string const& host) {
  auto executor = co_await asio::this_coro::executor;
  TlsServerFixture tls(cert, key);
  Server server(executor, ServerOptions{.tls = &tls.context}, echo_body_handler());
  server.listen();
  spawn_server(executor, server);
  Client client(executor, options);

  ClientRequest request{.url = url_for(server.port(), "/", host, "https")};
  auto error = co_await request_error(client, std::move(request));
  server.stop(0ms);
  co_await server.wait_stopped();
  co_return error;
}

TEST(HttpClient, TlsWithTrustedCaSucceeds) {
  run_test([]() -> asio::awaitable<void> {
    auto const& pki = test_pki();
    ClientOptions options{.use_system_ca_store = false, .extra_ca_pem = pki.ca_cert_pem};
    std::string const name = "localhost";
    std::string const ip = "127.0.0.1";
    auto by_name = co_await tls_request(pki.server_cert_pem, pki.server_key_pem, options, name);
    auto by_ip = co_await tls_request(pki.server_cert_pem, pki.server_key_pem, options, ip);

    EXPECT_FALSE(by_name.has_value()) << (by_name ? by_name->what() : "");
    EXPECT_FALSE(by_ip.has_value()) << (by_ip ? by_ip->what() : "");
  });
}

TEST(HttpClient, TlsWithoutCaFailsVerification) {
  run_test([]() -> asio::awaitable<void> {
    auto const& pki = test_pki();
    ClientOptions const defaults;
    std::string const name = "localhost";
    auto error = co_await tls_request(pki.server_cert_pem, pki.server_key_pem, defaults, name);

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::tls_certificate) << error->what();
      EXPECT_EQ(error->delivery(), Delivery::not_sent);
    }
  });
}

TEST(HttpClient, MissingExtraCaFileFailsAtConstruction) {
  asio::io_context io;
  ClientOptions options{.extra_ca_file = "/nonexistent/sluice-test-ca.pem"};

  EXPECT_THROW(Client(io.get_executor(), options), boost::system::system_error);
}

TEST(HttpClient, TlsWrongHostNameFails) {
  run_test([]() -> asio::awaitable<void> {
    auto const& pki = test_pki();
    ClientOptions options{.use_system_ca_store = false, .extra_ca_pem = pki.ca_cert_pem};
    std::string const name = "localhost";
    auto error = co_await tls_request(pki.wrong_name_cert_pem, pki.wrong_name_key_pem, options, name);

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::tls_certificate) << error->what();
      EXPECT_NE(std::string(error->what()).find("host name"), std::string::npos) << error->what();
    }
  });
}

// Copies bytes from `from` to `to` until either side closes.
asio::awaitable<void> splice(tcp::socket& from, tcp::socket& to) {
  char chunk[16 * 1024];
  for (;;) {
    auto [read_error, size] = co_await from.async_read_some(asio::buffer(chunk), use_tuple);
    if (read_error) {
      break;
    }
    auto [write_error, written] = co_await asio::async_write(to, asio::buffer(chunk, size), use_tuple);
    if (write_error) {
      break;
    }
  }
  error_code ignored;
  to.shutdown(tcp::socket::shutdown_send, ignored);
}

struct ProxyLog {
  int tunnels = 0;
  int forwarded = 0;
  int open_connections = 0;
  bool accepting = true;
  std::vector<std::string> heads;
};

// A minimal proxy for one connection: CONNECT opens a tunnel to 127.0.0.1;
// the proxy itself responds to any other request with the request target.
asio::awaitable<void> serve_proxy_connection(tcp::socket client, ProxyLog& log) {
  using namespace asio::experimental::awaitable_operators;
  struct CountOpen {
    explicit CountOpen(int& count) : count_(count) { ++count_; }
    ~CountOpen() { --count_; }
    int& count_;
  } const count_open(log.open_connections);
  std::string buffer;
  auto head = co_await read_head(client, buffer);
  log.heads.push_back(head);
  if (head.starts_with("CONNECT ")) {
    auto const target = head.substr(8, head.find(' ', 8) - 8);
    auto const port = static_cast<std::uint16_t>(std::stoi(target.substr(target.rfind(':') + 1)));
    tcp::socket upstream(client.get_executor());
    tcp::endpoint const upstream_endpoint{asio::ip::make_address("127.0.0.1"), port};
    co_await upstream.async_connect(upstream_endpoint, asio::use_awaitable);
    ++log.tunnels;
    std::string const text_5 = "HTTP/1.1 200 Connection established\r\n\r\n";
    co_await write_text(client, text_5);
    co_await (splice(client, upstream) && splice(upstream, client));
    co_return;
  }
  for (;;) {
    ++log.forwarded;
    auto const target = head.substr(head.find(' ') + 1, head.find(" HTTP/") - head.find(' ') - 1);
    std::string const text_6 = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(target.size()) + "\r\n\r\n" + target;
    co_await write_text(client, text_6);
    auto [error, size] = co_await asio::async_read_until(client, asio::dynamic_buffer(buffer), "\r\n\r\n", use_tuple);
    if (error) {
      co_return;
    }
    head = buffer.substr(0, size);
    buffer.erase(0, size);
    log.heads.push_back(head);
  }
}

asio::awaitable<void> run_proxy(tcp::acceptor& acceptor, ProxyLog& log) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(use_tuple);
    if (error) {
      log.accepting = false;
      co_return;
    }
    asio::co_spawn(acceptor.get_executor(), serve_proxy_connection(std::move(socket), log), [](std::exception_ptr) {});
  }
}

TEST(HttpClient, HttpsThroughProxyUsesOneTunnel) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto const& pki = test_pki();
    TlsServerFixture tls(pki.server_cert_pem, pki.server_key_pem);
    Server server(executor, ServerOptions{.tls = &tls.context}, echo_body_handler());
    server.listen();
    spawn_server(executor, server);
    tcp::acceptor proxy(executor, {asio::ip::make_address("127.0.0.1"), 0});
    ProxyLog log;
    asio::co_spawn(executor, run_proxy(proxy, log), [](std::exception_ptr) {});
    Client client(executor, ClientOptions{.use_system_ca_store = false,
                                          .extra_ca_pem = pki.ca_cert_pem,
                                          .proxy = "http://user:pa%3Ass@127.0.0.1:" +
                                                   std::to_string(proxy.local_endpoint().port())});

    for (int i = 0; i < 3; ++i) {
      ClientRequest request{.method = Verb::post, .url = url_for(server.port(), "/x", "localhost", "https"), .body = "b"};
      auto response = co_await client.request(std::move(request));
      EXPECT_EQ(response.body(), "echo:b");
    }

    EXPECT_EQ(log.tunnels, 1);
    EXPECT_EQ(client.stats().proxy_tunnels, 1u);
    EXPECT_FALSE(log.heads.empty());
    if (!log.heads.empty()) {
      // "user:pa:ss" in Base64.
      EXPECT_NE(log.heads[0].find("Proxy-Authorization: Basic dXNlcjpwYTpzcw=="), std::string::npos) << log.heads[0];
      EXPECT_TRUE(log.heads[0].starts_with("CONNECT localhost:" + std::to_string(server.port()) + " HTTP/1.1"))
          << log.heads[0];
    }
    client.close_idle_connections();
    proxy.close();
    auto const condition_7 = [&] { return !log.accepting && log.open_connections == 0; };
    bool const proxy_done = co_await eventually(condition_7);
    EXPECT_TRUE(proxy_done);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

TEST(HttpClient, PlainHttpThroughProxyUsesAbsoluteForm) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    tcp::acceptor proxy(executor, {asio::ip::make_address("127.0.0.1"), 0});
    ProxyLog log;
    asio::co_spawn(executor, run_proxy(proxy, log), [](std::exception_ptr) {});
    Client client(executor,
                  ClientOptions{.proxy = "http://127.0.0.1:" + std::to_string(proxy.local_endpoint().port())});

    ClientRequest request{.url = "http://example.test:8081/path?q=1"};
    auto response = co_await client.request(std::move(request));

    EXPECT_EQ(response.body(), "http://example.test:8081/path?q=1");
    EXPECT_EQ(log.forwarded, 1);
    EXPECT_EQ(log.tunnels, 0);
    client.close_idle_connections();
    proxy.close();
    auto const condition_8 = [&] { return !log.accepting && log.open_connections == 0; };
    bool const proxy_done = co_await eventually(condition_8);
    EXPECT_TRUE(proxy_done);
  });
}

TEST(HttpClient, InvalidUrlIsRejected) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Client client(executor);

    ClientRequest request{.url = "ftp://127.0.0.1/file"};
    auto error = co_await request_error(client, std::move(request));

    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), ErrorKind::invalid_request) << error->what();
    }
  });
}

TEST(HttpClient, ManyDistinctUrlsAreServed) {
  run_test([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    Handler handler = [](Request&& request, RequestInfo const&) -> asio::awaitable<Reply> {
      co_return ok_reply(std::string(request.target()));
    };
    Server server(executor, ServerOptions{}, handler);
    server.listen();
    spawn_server(executor, server);
    Client client(executor);

    // More URLs than the client keeps parsed, each one twice.
    int matching = 0;
    for (int round = 0; round < 2; ++round) {
      for (int index = 0; index < 300; ++index) {
        auto const path = "/item/" + std::to_string(index);
        ClientRequest request{.url = url_for(server.port(), path)};
        auto response = co_await client.request(std::move(request));
        matching += response.body() == path ? 1 : 0;
      }
    }

    EXPECT_EQ(matching, 600);
    server.stop(0ms);
    co_await server.wait_stopped();
  });
}

}  // namespace
}  // namespace sluice::http::test
