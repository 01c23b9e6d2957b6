#include <sluice/updates/offset.hpp>

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sluice/redis/client.hpp>

namespace sluice::updates {

namespace {

std::int64_t parse_integer(const std::string& key, const std::string& text, std::string_view value_name) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    throw std::runtime_error("Redis key " + key + " contains an invalid " + std::string(value_name) + " \"" + text +
                             "\": expected an integer");
  }
  return value;
}

DeadLetter parse_dead_letter(const std::string& key, const std::string& text) {
  boost::system::error_code error;
  const boost::json::value json = boost::json::parse(text, error);
  const boost::json::object* object = json.if_object();
  if (error || object == nullptr) {
    throw std::runtime_error("Redis list " + key + " contains an invalid entry: expected a JSON object");
  }
  DeadLetter letter;
  if (const auto* id = object->if_contains("update_id"); id != nullptr && id->is_int64()) {
    letter.update_id = id->as_int64();
  }
  if (const auto* raw = object->if_contains("raw_json"); raw != nullptr && raw->is_string()) {
    letter.raw_json = std::string(raw->as_string());
  }
  if (const auto* message = object->if_contains("error"); message != nullptr && message->is_string()) {
    letter.error = std::string(message->as_string());
  }
  return letter;
}

}  // namespace

RedisOffsetStore::RedisOffsetStore(redis::Client& client, std::string bot_id, std::string prefix)
    : client_(&client),
      offset_key_(prefix + ":" + bot_id + ":offset"),
      dead_letters_key_(prefix + ":" + bot_id + ":dead_letters"),
      journal_key_(prefix + ":" + bot_id + ":journal") {
  if (bot_id.empty()) {
    throw std::invalid_argument("RedisOffsetStore: bot_id must not be empty");
  }
}

boost::asio::awaitable<std::optional<std::int64_t>> RedisOffsetStore::load() {
  const std::optional<std::string> text = co_await client_->get(offset_key_);
  if (!text) {
    co_return std::nullopt;
  }
  co_return parse_integer(offset_key_, *text, "offset");
}

boost::asio::awaitable<void> RedisOffsetStore::save(std::int64_t offset) {
  const std::string text = std::to_string(offset);
  co_await client_->set(offset_key_, text);
}

boost::asio::awaitable<void> RedisOffsetStore::add_dead_letter(DeadLetter letter) {
  boost::json::object entry;
  if (letter.update_id) {
    entry["update_id"] = *letter.update_id;
  }
  entry["raw_json"] = letter.raw_json;
  entry["error"] = letter.error;
  const std::string text = boost::json::serialize(entry);
  redis::Reply reply = co_await client_->command("RPUSH", dead_letters_key_, text);
  reply.throw_if_error("RPUSH");
}

boost::asio::awaitable<void> RedisOffsetStore::journal_append(std::vector<JournalEntry> entries,
                                                              std::int64_t next_offset) {
  std::vector<redis::Command> commands;
  if (!entries.empty()) {
    redis::Command hset("HSET", journal_key_);
    for (const JournalEntry& entry : entries) {
      hset.arg(entry.update_id);
      hset.arg(entry.raw_json);
    }
    commands.push_back(std::move(hset));
  }
  commands.emplace_back("SET", offset_key_, next_offset);
  const std::vector<redis::Reply> replies = co_await client_->transaction(std::move(commands));
  for (const redis::Reply& reply : replies) {
    reply.throw_if_error("journal MULTI/EXEC");
  }
}

boost::asio::awaitable<void> RedisOffsetStore::journal_remove(std::vector<std::int64_t> update_ids) {
  if (update_ids.empty()) {
    co_return;
  }
  redis::Command hdel("HDEL", journal_key_);
  hdel.args(update_ids);
  redis::Reply reply = co_await client_->execute(std::move(hdel));
  reply.throw_if_error("HDEL");
}

boost::asio::awaitable<std::vector<JournalEntry>> RedisOffsetStore::journal_load() {
  redis::Reply reply = co_await client_->command("HGETALL", journal_key_);
  reply.throw_if_error("HGETALL");
  const auto& items = reply.as_array();
  std::vector<JournalEntry> entries;
  entries.reserve(items.size() / 2);
  for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
    entries.push_back(JournalEntry{
        .update_id = parse_integer(journal_key_, items[i].as_string(), "update_id"),
        .raw_json = items[i + 1].as_string(),
    });
  }
  std::sort(entries.begin(), entries.end(),
            [](const JournalEntry& a, const JournalEntry& b) { return a.update_id < b.update_id; });
  co_return entries;
}

boost::asio::awaitable<std::vector<DeadLetter>> RedisOffsetStore::dead_letters() {
  redis::Reply reply = co_await client_->command("LRANGE", dead_letters_key_, 0, -1);
  reply.throw_if_error("LRANGE");
  std::vector<DeadLetter> letters;
  for (const redis::Reply& item : reply.as_array()) {
    letters.push_back(parse_dead_letter(dead_letters_key_, item.as_string()));
  }
  co_return letters;
}

}  // namespace sluice::updates
