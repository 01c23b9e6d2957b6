// sluice-sandbox: runs the local Bot API server from the command line and
// prints its counters when it stops. Logs go to stderr and the counters to
// stdout, so `sluice-sandbox > stats.json` keeps a clean JSON document.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>
#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sluice/runtime/flags.hpp>
#include <sluice/runtime/logging.hpp>
#include <sluice/sandbox/sandbox.hpp>

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace boost::asio::experimental::awaitable_operators;
using sluice::sandbox::Sandbox;
using sluice::sandbox::SandboxOptions;

namespace {

// Pretty-prints JSON with two-space indentation for the final report.
void print_json(std::ostream& out, boost::json::value const& value, int indent = 0) {
  auto pad = std::string(static_cast<std::size_t>(indent), ' ');
  if (value.is_object() && !value.get_object().empty()) {
    out << "{\n";
    bool first = true;
    for (auto const& [key, field] : value.get_object()) {
      out << (first ? "" : ",\n") << pad << "  " << boost::json::serialize(boost::json::string(key)) << ": ";
      print_json(out, field, indent + 2);
      first = false;
    }
    out << "\n" << pad << "}";
    return;
  }
  if (value.is_double()) {
    out << fmt::format("{:.3f}", value.get_double());
    return;
  }
  out << boost::json::serialize(value);
}

// Serves until SIGINT, SIGTERM or POST /sandbox/shutdown.
// Returns whether `token` has the shape of the tokens Telegram issues: the
// bot id, ':' and a secret of letters, digits, '_' and '-'.
bool is_telegram_token(std::string_view token) {
  const std::size_t colon = token.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == token.size()) {
    return false;
  }
  for (std::size_t i = 0; i < token.size(); ++i) {
    const char c = token[i];
    const bool digit = c >= '0' && c <= '9';
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (i < colon ? !digit : (i > colon && !digit && !letter && c != '_' && c != '-')) {
      return false;
    }
  }
  return true;
}

asio::awaitable<void> run(Sandbox& sandbox, asio::signal_set& signals) {
  co_await sandbox.start();
  std::cerr << "sluice-sandbox listening on " << sandbox.base_url() << " (bot token "
            << sandbox.engine().bot().token << ")\n";
  auto signal = signals.async_wait(asio::use_awaitable);
  auto shutdown = sandbox.wait_stopped();
  auto first = co_await (std::move(signal) || std::move(shutdown));
  if (first.index() == 0) {
    std::cerr << "sluice-sandbox: signal received, stopping\n";
  }
  co_await sandbox.stop();
}

}  // namespace

int main(int argc, char** argv) {
  // Set before any module logger exists: they copy the default's sinks.
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice-sandbox"));
  SandboxOptions options;
  std::string scenario_file;
  std::string log_level = "info";
  std::string port = "8081";
  std::string seed = "1";
  std::string max_recorded_calls = std::to_string(options.engine.max_recorded_calls);
  std::string max_messages_per_chat = std::to_string(options.engine.max_messages_per_chat);
  std::string first_update_id = std::to_string(options.engine.first_update_id);
  po::options_description description(
      "sluice-sandbox: a local Bot API server with Telegram's behaviour, for tests, demos and benchmarks.\n"
      "A bot uses http://<address>:<port> instead of https://api.telegram.org.\n\nOptions");
  // clang-format off
  description.add_options()
      ("help,h", "print this help and exit")
      ("address", po::value(&options.address)->default_value(options.address),
       "IP address to listen on")
      ("port,p", po::value(&port)->default_value(port),
       "TCP port to listen on, 0-65535; 0 picks a free port")
      ("scenario,s", po::value(&scenario_file),
       "scenario file (JSON) with the bot, users, chats, events and simulated users; see docs/sandbox.md")
      ("token", po::value(&options.engine.bot.token),
       "bot token accepted in /bot<token>/ URLs (default from the scenario, else a built-in test token)")
      ("tls-cert", po::value(&options.tls_certificate_file),
       "PEM certificate chain file; serves HTTPS (needs --tls-key)")
      ("tls-key", po::value(&options.tls_private_key_file),
       "PEM private key file for --tls-cert")
      ("tls-self-signed", po::bool_switch(&options.tls_self_signed),
       "serve HTTPS with a self-signed certificate for localhost made at start")
      ("no-flood-limits", "turn Telegram's flood limits off (429 replies), e.g. for benchmarks")
      ("seed", po::value(&seed)->default_value(seed),
       "seed of the random choices (fault injection, ids), for reproducible runs; 0 or more")
      ("max-recorded-calls", po::value(&max_recorded_calls)->default_value(max_recorded_calls),
       "number of calls kept for GET /sandbox/calls (0 keeps none; counters always count)")
      ("max-messages-per-chat", po::value(&max_messages_per_chat)->default_value(max_messages_per_chat),
       "messages kept per chat for edits, replies, copies and deletes; at least 1")
      ("first-update-id", po::value(&first_update_id)->default_value(first_update_id),
       "update_id of the first update; at least 1")
      ("webhook-insecure", "do not verify the certificates of HTTPS webhooks")
      ("log-level", po::value(&log_level)->default_value(log_level),
       "log level: trace, debug, info, warn, error, critical or off");
  // clang-format on

  po::variables_map values;
  try {
    po::store(po::parse_command_line(argc, argv, description), values);
    if (values.count("help") != 0) {
      std::cout << description << "\n";
      return 0;
    }
    po::notify(values);
    constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
    options.port = sluice::runtime::parse_integer_flag<std::uint16_t>("port", port, 0, std::numeric_limits<std::uint16_t>::max());
    options.engine.max_recorded_calls =
        sluice::runtime::parse_integer_flag<std::size_t>("max-recorded-calls", max_recorded_calls, 0, kInt64Max);
    options.engine.max_messages_per_chat =
        sluice::runtime::parse_integer_flag<std::size_t>("max-messages-per-chat", max_messages_per_chat, 1, kInt64Max);
    options.engine.first_update_id = sluice::runtime::parse_integer_flag<std::int64_t>("first-update-id", first_update_id, 1, kInt64Max);
    options.engine.seed = sluice::runtime::parse_integer_flag<std::uint64_t>("seed", seed, 0, kInt64Max);
    const auto level = sluice::runtime::parse_log_level(log_level);
    if (!level) {
      throw po::error(fmt::format("invalid value '{}' for --log-level: expected one of {}", log_level,
                                  sluice::runtime::kLogLevelNames));
    }
    spdlog::set_level(*level);
    if (values.count("token") != 0 && !is_telegram_token(options.engine.bot.token)) {
      throw po::error(fmt::format(
          "invalid value '{}' for --token: expected the bot id, ':' and letters, digits, '_' or '-' "
          "(123456789:AAH...)",
          options.engine.bot.token));
    }
    if (options.tls_certificate_file.empty() != options.tls_private_key_file.empty()) {
      throw po::error("--tls-cert and --tls-key go together: give both, or --tls-self-signed");
    }
    boost::system::error_code address_error;
    asio::ip::make_address(options.address, address_error);
    if (address_error) {
      throw po::error(fmt::format("invalid value '{}' for --address: expected an IP address such as 127.0.0.1",
                                  options.address));
    }
  } catch (std::exception const& error) {
    std::cerr << "sluice-sandbox: " << error.what() << "\nRun sluice-sandbox --help for the options.\n";
    return 2;
  }

  try {
    if (!scenario_file.empty()) {
      auto scenario = sluice::sandbox::load_scenario(scenario_file);
      // A token given on the command line wins over the scenario's.
      if (values.count("token") != 0 && scenario.bot) {
        scenario.bot->token = options.engine.bot.token;
      }
      options.scenario = std::move(scenario);
    }
    if (values.count("no-flood-limits") != 0) {
      options.engine.flood.enabled = false;
      if (options.scenario && options.scenario->flood) {
        options.scenario->flood->enabled = false;
      }
    }
    options.webhook_verify_peer = values.count("webhook-insecure") == 0;

    asio::io_context context;
    int exit_code = 0;
    {
      Sandbox sandbox(context.get_executor(), options);
      asio::signal_set signals(context, SIGINT, SIGTERM);
      auto finished = [&exit_code, &context](std::exception_ptr error) {
        if (error) {
          try {
            std::rethrow_exception(error);
          } catch (boost::system::system_error const& e) {
            // Such as "cannot bind 127.0.0.1:8081: Address already in use",
            // without the source location Boost appends in brackets.
            std::string text = e.what();
            text.resize(std::min(text.size(), text.find(" [")));
            std::cerr << "sluice-sandbox: " << text << "\n";
          } catch (std::exception const& e) {
            std::cerr << "sluice-sandbox: " << e.what() << "\n";
          }
          exit_code = 1;
        }
        // Idle webhook connections would keep the loop alive; the sandbox
        // has stopped, so nothing else needs it.
        context.stop();
      };
      asio::co_spawn(context, run(sandbox, signals), finished);
      context.run();
      if (exit_code == 0) {
        print_json(std::cout, sandbox.engine().stats_json(sluice::sandbox::Clock::now()));
        std::cout << "\n";
      }
    }
    return exit_code;
  } catch (std::exception const& error) {
    std::cerr << "sluice-sandbox: " << error.what() << "\n";
    return 1;
  }
}
