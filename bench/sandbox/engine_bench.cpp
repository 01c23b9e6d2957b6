// CPU cost of the sandbox's request handling without sockets: decoding a
// JSON body and running the method, as the server does for each call.

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <variant>

#include <sluice/sandbox/engine.hpp>
#include <sluice/sandbox/request.hpp>

namespace {

using sluice::sandbox::ApiReply;
using sluice::sandbox::ApiRequest;
using sluice::sandbox::Clock;
using sluice::sandbox::Engine;

Engine make_engine() {
  sluice::sandbox::EngineOptions options;
  options.flood.enabled = false;
  Engine engine(options);
  sluice::sandbox::User user;
  user.id = 1;
  user.first_name = "Bench";
  engine.add_user(user);
  return engine;
}

void run_call(benchmark::State& state, std::string_view method, std::string_view body) {
  auto engine = make_engine();
  auto target = "/bot" + engine.bot().token + "/" + std::string(method);
  auto route = sluice::sandbox::parse_target(target);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto parsed = sluice::sandbox::parse_api_request(route, "application/json", body);
    auto outcome = engine.handle(std::get<ApiRequest>(std::move(parsed)), Clock::now());
    auto const& reply = std::get<ApiReply>(outcome);
    bytes += reply.body.size();
    benchmark::DoNotOptimize(reply.body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["reply_bytes"] = static_cast<double>(bytes) / static_cast<double>(state.iterations());
}

// The call bench/sandbox/run.sh sends with wrk.
void BM_SendMessagePlain(benchmark::State& state) {
  run_call(state, "sendMessage", R"({"chat_id":1,"text":"Hello from wrk: /start and https://example.org"})");
}
BENCHMARK(BM_SendMessagePlain);

void BM_SendMessageHtml(benchmark::State& state) {
  run_call(state, "sendMessage",
           R"({"chat_id":1,"parse_mode":"HTML","text":"<b>Hello</b> <i>there</i>, <a href=\"https://example.org\">link</a>"})");
}
BENCHMARK(BM_SendMessageHtml);

void BM_SendMessageKeyboard(benchmark::State& state) {
  run_call(state, "sendMessage",
           R"({"chat_id":1,"text":"Pick one","reply_markup":{"inline_keyboard":[[{"text":"Yes","callback_data":"y"},{"text":"No","callback_data":"n"}]]}})");
}
BENCHMARK(BM_SendMessageKeyboard);

void BM_GetMe(benchmark::State& state) {
  run_call(state, "getMe", "{}");
}
BENCHMARK(BM_GetMe);

}  // namespace
