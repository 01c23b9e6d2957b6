// Load program for the Bot API client (sluice::telegram::BotApi).
//
//   sluice_telegram_client_bench serve --port-file FILE [--seconds N]
//       Runs http::Server on 127.0.0.1 (ephemeral port, written to FILE), one
//       thread, responding to every request with a canned sendMessage reply
//       (`{"ok":true,"result":{...Message...}}`), until SIGINT/SIGTERM or N
//       seconds.
//   sluice_telegram_client_bench client --port P [--seconds N]
//                                       [--concurrency C] [--flood on|off]
//       Runs BotApi::send_message with C calls in flight for N seconds and
//       prints "calls=R failures=F seconds=S rps=X". With --flood on, flood
//       control runs with budgets far above the measured rate, to show its
//       cost; with off (the default) it is disabled.
//
// bench/telegram_client/run.sh runs both, plus wrk against the same server.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <sluice/http/server.hpp>
#include <sluice/telegram/bot_api.hpp>

namespace {

namespace asio = boost::asio;
namespace telegram = sluice::telegram;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A token of the real shape; the local server ignores it.
constexpr std::string_view kToken = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr";

// The reply of a real sendMessage in a private chat, anonymised.
constexpr std::string_view kReplyBody =
    R"({"ok":true,"result":{"message_id":4521,"from":{"id":100000019,"is_bot":true,)"
    R"("first_name":"Example Bot","username":"example_bot"},"chat":{"id":100000001,)"
    R"("first_name":"Alice","username":"alice_example","type":"private"},)"
    R"("date":1700000000,"text":"hi"}})";

struct Arguments {
  std::string mode;
  std::string port_file;
  std::uint16_t port = 0;
  int seconds = 10;
  int concurrency = 64;
  bool flood = false;
};

Arguments parse_arguments(int argc, char** argv) {
  if (argc < 2) {
    throw std::invalid_argument("usage: sluice_telegram_client_bench serve|client [options]");
  }
  Arguments arguments;
  arguments.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view name = argv[i];
    const std::string value = argv[i + 1];
    if (name == "--port-file") {
      arguments.port_file = value;
    } else if (name == "--port") {
      arguments.port = static_cast<std::uint16_t>(std::stoi(value));
    } else if (name == "--seconds") {
      arguments.seconds = std::stoi(value);
    } else if (name == "--concurrency") {
      arguments.concurrency = std::stoi(value);
    } else if (name == "--flood") {
      arguments.flood = value == "on";
    } else {
      throw std::invalid_argument("unknown option " + std::string(name));
    }
  }
  return arguments;
}

int serve(const Arguments& arguments) {
  asio::io_context context(1);
  sluice::http::Handler handler = [](sluice::http::Request&&, const sluice::http::RequestInfo&)
      -> asio::awaitable<sluice::http::Reply> {
    sluice::http::Reply reply{.response = sluice::http::Response{sluice::http::Status::ok, 11}};
    reply.response.set(sluice::http::Field::content_type, "application/json");
    reply.response.body() = kReplyBody;
    reply.response.prepare_payload();
    co_return reply;
  };
  sluice::http::Server server(context.get_executor(), sluice::http::ServerOptions{}, handler);
  server.listen();
  {
    std::ofstream port_file(arguments.port_file);
    port_file << server.port() << "\n";
  }

  asio::signal_set signals(context, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { server.stop(1s); });
  asio::steady_timer limit(context, std::chrono::seconds(arguments.seconds));
  limit.async_wait([&](const boost::system::error_code& error) {
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
  return 0;
}

struct ClientRun {
  std::uint64_t calls = 0;
  std::uint64_t failures = 0;
  int active_loops = 0;
  Clock::time_point stop_at{};
};

asio::awaitable<void> send_loop(telegram::BotApi& api, std::int64_t chat, ClientRun& run) {
  while (Clock::now() < run.stop_at) {
    telegram::SendMessage request{.chat_id = chat, .text = "hi"};
    try {
      const telegram::Message sent = co_await api.send_message(std::move(request));
      run.calls += sent.message_id > 0 ? 1 : 0;
    } catch (const std::exception& error) {
      ++run.failures;
    }
  }
  --run.active_loops;
}

int run_client(const Arguments& arguments) {
  asio::io_context context(1);
  const auto concurrency = static_cast<std::size_t>(arguments.concurrency);
  telegram::BotApiOptions options{
      .token = std::string(kToken),
      .base_url = "http://127.0.0.1:" + std::to_string(arguments.port),
      .max_in_flight = concurrency,
  };
  options.http.max_connections_per_host = concurrency;
  options.flood.enabled = arguments.flood;
  // Budgets far above what one loop can send, so that only the bookkeeping
  // is measured.
  options.flood.global = {.limit = 10'000'000, .period = 1s, .burst = 10'000};
  options.flood.per_chat = {.limit = 10'000'000, .period = 1s, .burst = 10'000};
  options.flood.per_group.enabled = false;

  ClientRun run;
  {
    telegram::BotApi api(context.get_executor(), options);
    const auto start = Clock::now();
    run.stop_at = start + std::chrono::seconds(arguments.seconds);
    run.active_loops = arguments.concurrency;
    for (int i = 0; i < arguments.concurrency; ++i) {
      asio::co_spawn(context, send_loop(api, 100000001 + i, run), [](std::exception_ptr failure) {
        if (failure) {
          std::rethrow_exception(failure);
        }
      });
    }
    // The loop stops when every send loop has ended; the client's idle
    // connections would keep run() busy until their idle timeout.
    while (run.active_loops > 0 && context.run_one() > 0) {
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("calls=%llu failures=%llu seconds=%.2f rps=%.0f retries=%llu\n",
                static_cast<unsigned long long>(run.calls),
                static_cast<unsigned long long>(run.failures), seconds,
                static_cast<double>(run.calls) / seconds,
                static_cast<unsigned long long>(api.metrics().retries));
  }
  context.run_for(2s);
  return run.failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    spdlog::set_level(spdlog::level::warn);
    const Arguments arguments = parse_arguments(argc, argv);
    if (arguments.mode == "serve") {
      return serve(arguments);
    }
    if (arguments.mode == "client") {
      return run_client(arguments);
    }
    throw std::invalid_argument("unknown mode " + arguments.mode + " (expected serve or client)");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sluice_telegram_client_bench: %s\n", error.what());
    return 2;
  }
}
