// Fuzzes the sandbox's request handling: routing, body decoding (JSON,
// form, multipart), parameter conversion, markup parsing and the method
// semantics. Any input must end in a reply with Telegram's JSON shape,
// never in a crash or an exception.
//
// Input layout: the first byte picks the content type, the bytes up to the
// first '\n' are the request target, the rest is the body.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/parse.hpp>

#include <sluice/sandbox/engine.hpp>
#include <sluice/sandbox/request.hpp>

namespace {

using sluice::sandbox::ApiReply;
using sluice::sandbox::Engine;

// The engine keeps what calls create (messages, files); a fresh one every
// so many inputs bounds memory over a long run.
constexpr int kInputsPerEngine = 5000;

std::unique_ptr<Engine> make_engine() {
  sluice::sandbox::EngineOptions options;
  options.flood.enabled = false;
  options.max_recorded_calls = 100;
  options.max_messages_per_chat = 50;
  auto engine = std::make_unique<Engine>(options);
  sluice::sandbox::User user;
  user.id = 1;
  user.first_name = "Fuzz";
  engine->add_user(user);
  sluice::sandbox::Chat group;
  group.id = -2;
  group.type = sluice::sandbox::ChatType::supergroup;
  group.title = "Fuzz group";
  engine->add_chat(group);
  engine->push_user_message(1, 0, "/start", sluice::sandbox::Clock::now());
  return engine;
}

void check_reply(ApiReply const& reply) {
  boost::system::error_code ec;
  auto body = boost::json::parse(reply.body, ec);
  if (ec || !body.is_object() || !body.get_object().contains("ok")) {
    std::fprintf(stderr, "reply is not Telegram's JSON shape: %s\n", reply.body.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::unique_ptr<Engine> engine;
  static int inputs = 0;
  if (!engine || ++inputs % kInputsPerEngine == 0) {
    engine = make_engine();
  }
  if (size == 0) {
    return 0;
  }

  std::string_view input(reinterpret_cast<char const*>(data), size);
  static constexpr std::string_view kContentTypes[] = {
      "application/json",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=B",
      "text/plain",
  };
  auto const content_type = kContentTypes[static_cast<unsigned char>(input[0]) % 4];
  input.remove_prefix(1);
  auto newline = input.find('\n');
  auto target = input.substr(0, newline);
  auto body = newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);

  // Most inputs should reach the methods, so a target without a /bot
  // prefix gets the sandbox's own token in front of it.
  std::string full_target(target);
  if (!full_target.starts_with("/")) {
    full_target = "/bot" + engine->bot().token + "/" + full_target;
  }
  auto route = sluice::sandbox::parse_target(full_target);
  if (route.kind != sluice::sandbox::RouteKind::bot_api) {
    return 0;
  }
  auto parsed = sluice::sandbox::parse_api_request(route, content_type, body);
  if (!std::holds_alternative<sluice::sandbox::ApiRequest>(parsed)) {
    return 0;
  }
  auto outcome = engine->handle(std::get<sluice::sandbox::ApiRequest>(std::move(parsed)), sluice::sandbox::Clock::now());
  if (auto const* wait = std::get_if<sluice::sandbox::PollWait>(&outcome)) {
    engine->cancel_poll(wait->ticket);
    return 0;
  }
  check_reply(std::get<ApiReply>(outcome));
  return 0;
}
