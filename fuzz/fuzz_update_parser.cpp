// Fuzzes the update parser: any input must either be rejected with a
// ParseError or parse into an Update that writes back to JSON and reads
// again into an equal value. Entity offsets of parsed messages are also
// mapped back onto their text.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <sluice/telegram/json.hpp>
#include <sluice/telegram/update.hpp>
#include <sluice/telegram/utf16.hpp>

namespace {

void check_entities(const sluice::telegram::Message& message) {
  if (!message.text || !message.entities) {
    return;
  }
  for (const auto& entity : *message.entities) {
    const auto text = sluice::telegram::entity_text(*message.text, entity);
    if (text && text->size() > message.text->size()) {
      std::fprintf(stderr, "entity text longer than the message\n");
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  sluice::telegram::Update update;
  if (sluice::telegram::try_parse_json(input, update)) {
    return 0;
  }
  if (update.message) {
    check_entities(*update.message);
  }

  const std::string written = sluice::telegram::serialize_json(update);
  sluice::telegram::Update again;
  if (auto error = sluice::telegram::try_parse_json(written, again)) {
    std::fprintf(stderr, "written update does not parse: %s\n%s\n", error->what(), written.c_str());
    std::abort();
  }
  if (!(again == update)) {
    std::fprintf(stderr, "update changed in a write and read: %s\n", written.c_str());
    std::abort();
  }
  return 0;
}
