// Throughput of turning update JSON into typed values: every file of
// tests/data/updates in turn (round-robin), and a whole getUpdates reply.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sluice/telegram/json.hpp>
#include <sluice/telegram/methods.hpp>
#include <sluice/telegram/response.hpp>
#include <sluice/telegram/update.hpp>

namespace {

using sluice::telegram::Update;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// The update files that parse (one fixture has a redacted, incomplete
// shipping address and is rejected by design).
std::vector<std::string> load_updates() {
  std::vector<std::filesystem::path> paths;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(SLUICE_TEST_DATA_DIR) / "updates")) {
    paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<std::string> texts;
  for (const auto& path : paths) {
    std::string text = read_file(path);
    Update update;
    if (!sluice::telegram::try_parse_json(text, update)) {
      texts.push_back(std::move(text));
    }
  }
  return texts;
}

void BM_ParseUpdateCorpus(benchmark::State& state) {
  const std::vector<std::string> texts = load_updates();
  std::size_t next = 0;
  std::size_t bytes = 0;
  std::size_t failures = 0;
  for (auto _ : state) {
    Update update;
    if (sluice::telegram::try_parse_json(texts[next], update)) {
      ++failures;
    }
    benchmark::DoNotOptimize(update);
    bytes += texts[next].size();
    next = next + 1 == texts.size() ? 0 : next + 1;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["files"] = static_cast<double>(texts.size());
  state.counters["failures"] = static_cast<double>(failures);
}
BENCHMARK(BM_ParseUpdateCorpus);

void BM_ParseGetUpdatesReply(benchmark::State& state) {
  const std::string body = read_file(std::filesystem::path(SLUICE_TEST_DATA_DIR) / "responses" /
                                     "getupdates_result_01.json");
  std::size_t updates = 0;
  for (auto _ : state) {
    const auto envelope = sluice::telegram::parse_response_envelope(body);
    auto result = sluice::telegram::parse_result<sluice::telegram::GetUpdates>(envelope);
    updates += result.size();
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(updates));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ParseGetUpdatesReply);

void BM_SerializeUpdateCorpus(benchmark::State& state) {
  std::vector<Update> updates;
  for (const std::string& text : load_updates()) {
    updates.push_back(sluice::telegram::parse_json<Update>(text));
  }
  std::size_t next = 0;
  for (auto _ : state) {
    std::string text = sluice::telegram::serialize_json(updates[next]);
    benchmark::DoNotOptimize(text);
    next = next + 1 == updates.size() ? 0 : next + 1;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_SerializeUpdateCorpus);

}  // namespace
