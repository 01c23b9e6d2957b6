// Load programs for the http module.
//
//   sluice_http_bench serve  --port-file FILE [--seconds N]
//       Runs http::Server on 127.0.0.1 (ephemeral port, written to FILE) with
//       a handler that responds to every request with a small JSON body, on one
//       thread, until SIGINT/SIGTERM or N seconds.
//   sluice_http_bench client --port P [--seconds N] [--concurrency C]
//       Runs http::Client with C requests in flight (a small JSON POST like
//       sendMessage) for N seconds and prints "requests=R seconds=S rps=X".
//
// bench/http/run.sh runs both, plus wrk against the same server.

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <sluice/http/client.hpp>
#include <sluice/http/server.hpp>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kReplyBody =
    R"({"ok":true,"result":{"message_id":1,"date":1700000000,"chat":{"id":1,"type":"private"},"text":"hi"}})";
constexpr std::string_view kRequestBody = R"({"chat_id":1,"text":"hi"})";

struct Arguments {
  std::string mode;
  std::string port_file;
  std::uint16_t port = 0;
  int seconds = 10;
  int concurrency = 64;
};

Arguments parse_arguments(int argc, char** argv) {
  Arguments arguments;
  if (argc < 2) {
    throw std::invalid_argument("usage: sluice_http_bench serve|client [options]");
  }
  arguments.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string_view const name = argv[i];
    std::string const value = argv[i + 1];
    if (name == "--port-file") {
      arguments.port_file = value;
    } else if (name == "--port") {
      arguments.port = static_cast<std::uint16_t>(std::stoi(value));
    } else if (name == "--seconds") {
      arguments.seconds = std::stoi(value);
    } else if (name == "--concurrency") {
      arguments.concurrency = std::stoi(value);
    } else {
      throw std::invalid_argument("unknown option " + std::string(name));
    }
  }
  return arguments;
}

int serve(Arguments const& arguments) {
  asio::io_context context(1);
  sluice::http::Handler handler = [](sluice::http::Request&&,
                                     sluice::http::RequestInfo const&) -> asio::awaitable<sluice::http::Reply> {
    sluice::http::Reply reply{.response = sluice::http::Response{sluice::http::Status::ok, 11}};
    reply.response.set(sluice::http::Field::content_type, "application/json");
    reply.response.body() = kReplyBody;
    co_return reply;
  };
  sluice::http::Server server(context.get_executor(), sluice::http::ServerOptions{}, handler);
  server.listen();
  {
    std::ofstream port_file(arguments.port_file);
    port_file << server.port() << "\n";
  }

  asio::signal_set signals(context, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code const&, int) { server.stop(1s); });
  asio::steady_timer limit(context);
  limit.expires_after(std::chrono::seconds(arguments.seconds));
  limit.async_wait([&](boost::system::error_code const& error) {
    if (!error) {
      server.stop(1s);
    }
  });
  asio::co_spawn(context, server.run(), [&](std::exception_ptr failure) {
    signals.cancel();
    limit.cancel();
    if (failure) {
      std::rethrow_exception(failure);
    }
  });
  context.run();
  auto const stats = server.stats();
  std::printf("server connections=%llu requests=%llu\n", static_cast<unsigned long long>(stats.connections_accepted),
              static_cast<unsigned long long>(stats.requests));
  return 0;
}

struct ClientRun {
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;
  int workers_left = 0;
  Clock::time_point stop_at;
  Clock::time_point finished_at;
};

asio::awaitable<void> client_worker(sluice::http::Client& client, std::string url, ClientRun& run) {
  while (Clock::now() < run.stop_at) {
    sluice::http::ClientRequest request{.method = sluice::http::Verb::post,
                                        .url = url,
                                        .body = std::string(kRequestBody),
                                        .content_type = "application/json",
                                        .operation = "sendMessage"};
    try {
      auto response = co_await client.request(std::move(request));
      ++run.requests;
    } catch (std::exception const& error) {
      ++run.failures;
    }
  }
  if (--run.workers_left == 0) {
    // Idle pooled connections keep the loop running until their idle
    // timeout, so the last worker closes them.
    run.finished_at = Clock::now();
    client.close_idle_connections();
  }
}

int run_client(Arguments const& arguments) {
  asio::io_context context(1);
  sluice::http::Client client(context.get_executor(),
                              sluice::http::ClientOptions{
                                  .max_connections_per_host = static_cast<std::size_t>(arguments.concurrency)});
  auto const url = "http://127.0.0.1:" + std::to_string(arguments.port) + "/botTOKEN/sendMessage";
  ClientRun run;
  auto const start = Clock::now();
  run.stop_at = start + std::chrono::seconds(arguments.seconds);
  run.workers_left = arguments.concurrency;
  for (int i = 0; i < arguments.concurrency; ++i) {
    asio::co_spawn(context, client_worker(client, url, run), [](std::exception_ptr failure) {
      if (failure) {
        std::rethrow_exception(failure);
      }
    });
  }
  context.run();
  auto const seconds = std::chrono::duration<double>(run.finished_at - start).count();
  std::printf("requests=%llu failures=%llu seconds=%.2f rps=%.0f connections=%llu\n",
              static_cast<unsigned long long>(run.requests), static_cast<unsigned long long>(run.failures), seconds,
              static_cast<double>(run.requests) / seconds,
              static_cast<unsigned long long>(client.stats().connections_opened));
  return run.failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    spdlog::set_level(spdlog::level::warn);
    auto const arguments = parse_arguments(argc, argv);
    if (arguments.mode == "serve") {
      return serve(arguments);
    }
    if (arguments.mode == "client") {
      return run_client(arguments);
    }
    throw std::invalid_argument("unknown mode " + arguments.mode + " (expected serve or client)");
  } catch (std::exception const& error) {
    std::fprintf(stderr, "sluice_http_bench: %s\n", error.what());
    return 2;
  }
}
