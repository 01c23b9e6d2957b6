// Storage keys, the per-key lock table, MemoryStorage and Conversation.

#include <sluice/fsm/conversation.hpp>
#include <sluice/fsm/storage.hpp>

#include <charconv>
#include <utility>
#include <vector>

#include <boost/asio/this_coro.hpp>

#include "fsm/key_lock_table.hpp"

namespace sluice::fsm {

// -- keys ---------------------------------------------------------------------

std::string StorageKey::to_string() const {
  std::string text = std::to_string(bot_id) + ":" + std::to_string(chat_id) + ":" + std::to_string(user_id);
  if (thread_id) {
    text += ":" + std::to_string(*thread_id);
  }
  return text;
}

namespace {

// Parses one decimal field of a key and advances `text` past it and the
// ':' that follows, if any.
bool parse_field(std::string_view& text, std::int64_t& value) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(begin, end, value);
  if (error != std::errc() || stop == begin) {
    return false;
  }
  text.remove_prefix(static_cast<std::size_t>(stop - begin));
  if (!text.empty()) {
    if (text.front() != ':') {
      return false;
    }
    text.remove_prefix(1);
    return !text.empty();
  }
  return true;
}

}  // namespace

std::optional<StorageKey> StorageKey::parse(std::string_view text) {
  StorageKey key;
  if (!parse_field(text, key.bot_id) || text.empty() || !parse_field(text, key.chat_id) || text.empty() ||
      !parse_field(text, key.user_id)) {
    return std::nullopt;
  }
  if (!text.empty()) {
    std::int64_t thread = 0;
    if (!parse_field(text, thread) || !text.empty()) {
      return std::nullopt;
    }
    key.thread_id = thread;
  }
  return key;
}

std::optional<StorageKey> make_key(KeyStrategy strategy, std::int64_t bot_id, std::optional<std::int64_t> chat_id,
                                   std::optional<std::int64_t> user_id, std::optional<std::int64_t> thread_id) {
  if (!chat_id && !user_id) {
    return std::nullopt;
  }
  const std::int64_t chat = chat_id.value_or(*user_id);
  const std::int64_t user = user_id.value_or(chat);
  StorageKey key{.bot_id = bot_id, .chat_id = chat, .user_id = user};
  switch (strategy) {
    case KeyStrategy::chat_and_user:
      break;
    case KeyStrategy::chat_and_user_in_topic:
      key.thread_id = thread_id;
      break;
    case KeyStrategy::chat:
      key.user_id = chat;
      break;
    case KeyStrategy::user:
      key.chat_id = user;
      break;
  }
  return key;
}

LockTimeout::LockTimeout(std::string lock_key, const std::string& message)
    : std::runtime_error(message), lock_key_(std::move(lock_key)) {}

boost::asio::awaitable<void> KeyLock::release() {
  std::unique_ptr<Holder> holder = std::move(holder_);
  if (holder) {
    co_await holder->release();
  }
}

// -- lock table ---------------------------------------------------------------

namespace detail {

boost::asio::awaitable<KeyLockTable::Lock> KeyLockTable::acquire(const std::string& key) {
  auto found = entries_.find(key);
  if (found == entries_.end()) {
    auto executor = co_await boost::asio::this_coro::executor;
    auto entry = std::make_unique<Entry>(executor, key);
    found = entries_.emplace(key, std::move(entry)).first;
  }
  Entry* entry = found->second.get();
  ++entry->users;

  runtime::Permit permit;
  try {
    permit = co_await entry->semaphore.acquire();
  } catch (...) {
    leave(entry);
    throw;
  }

  Lock lock;
  lock.table_ = this;
  lock.entry_ = entry;
  lock.permit_ = std::move(permit);
  co_return lock;
}

void KeyLockTable::leave(Entry* entry) noexcept {
  if (--entry->users != 0) {
    return;
  }
  auto found = entries_.find(entry->key);
  if (found != entries_.end()) {
    entries_.erase(found);
  }
}

KeyLockTable::Lock::Lock(Lock&& other) noexcept
    : table_(std::exchange(other.table_, nullptr)),
      entry_(std::exchange(other.entry_, nullptr)),
      permit_(std::move(other.permit_)) {}

KeyLockTable::Lock& KeyLockTable::Lock::operator=(Lock&& other) noexcept {
  if (this != &other) {
    release();
    table_ = std::exchange(other.table_, nullptr);
    entry_ = std::exchange(other.entry_, nullptr);
    permit_ = std::move(other.permit_);
  }
  return *this;
}

void KeyLockTable::Lock::release() noexcept {
  if (entry_ == nullptr) {
    return;
  }
  // The permit goes to the next waiter first, which keeps the entry alive
  // while anyone waits.
  permit_.release();
  table_->leave(std::exchange(entry_, nullptr));
  table_ = nullptr;
}

}  // namespace detail

// -- memory storage -----------------------------------------------------------

MemoryStorage::MemoryStorage(MemoryStorageOptions options)
    : options_(std::move(options)), locks_(std::make_unique<detail::KeyLockTable>()) {}

MemoryStorage::~MemoryStorage() = default;

std::chrono::steady_clock::time_point MemoryStorage::now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

std::size_t MemoryStorage::lock_entries() const noexcept { return locks_->size(); }

boost::asio::awaitable<std::optional<StateRecord>> MemoryStorage::get(StorageKey key) {
  auto found = records_.find(key.to_string());
  if (found == records_.end()) {
    co_return std::nullopt;
  }
  if (found->second.expires_at && *found->second.expires_at <= now()) {
    records_.erase(found);
    co_return std::nullopt;
  }
  co_return found->second.record;
}

boost::asio::awaitable<void> MemoryStorage::set(StorageKey key, StateRecord record,
                                                std::optional<std::chrono::milliseconds> ttl) {
  const auto current = now();
  std::optional<std::chrono::steady_clock::time_point> expires_at;
  if (ttl) {
    expires_at = current + *ttl;
  }
  std::string text = key.to_string();
  records_.insert_or_assign(std::move(text),
                            Entry{.key = key, .record = std::move(record), .expires_at = expires_at});
  sweep(current);
  co_return;
}

void MemoryStorage::sweep(std::chrono::steady_clock::time_point current) {
  auto position = records_.upper_bound(sweep_cursor_);
  for (std::size_t checked = 0; checked < options_.sweep_batch; ++checked) {
    if (position == records_.end()) {
      position = records_.begin();
      if (position == records_.end()) {
        break;
      }
    }
    sweep_cursor_ = position->first;
    if (position->second.expires_at && *position->second.expires_at <= current) {
      position = records_.erase(position);
    } else {
      ++position;
    }
  }
}

boost::asio::awaitable<void> MemoryStorage::clear(StorageKey key) {
  records_.erase(key.to_string());
  co_return;
}

boost::asio::awaitable<KeyLock> MemoryStorage::lock(StorageKey key) {
  detail::KeyLockTable::Lock held = co_await locks_->acquire(key.to_string());
  co_return KeyLock(std::make_unique<detail::LocalLockHolder>(std::move(held)));
}

boost::asio::awaitable<std::size_t> MemoryStorage::move_chat(std::int64_t bot_id, std::int64_t old_chat_id,
                                                             std::int64_t new_chat_id) {
  const auto current = now();
  std::vector<std::string> old_keys;
  for (const auto& [text, entry] : records_) {
    if (entry.key.bot_id == bot_id && entry.key.chat_id == old_chat_id) {
      old_keys.push_back(text);
    }
  }

  std::size_t moved = 0;
  for (const std::string& text : old_keys) {
    auto found = records_.find(text);
    Entry entry = std::move(found->second);
    records_.erase(found);
    if (entry.expires_at && *entry.expires_at <= current) {
      continue;
    }
    entry.key.chat_id = new_chat_id;
    // The chat strategy stores the chat id as user id.
    if (entry.key.user_id == old_chat_id) {
      entry.key.user_id = new_chat_id;
    }
    std::string new_text = entry.key.to_string();
    if (records_.emplace(std::move(new_text), std::move(entry)).second) {
      ++moved;
    }
  }
  co_return moved;
}

boost::asio::awaitable<void> MemoryStorage::close() { co_return; }

// -- conversation -------------------------------------------------------------

Conversation::Conversation(Storage& storage, StorageKey key, std::optional<StateRecord> record,
                           std::optional<std::chrono::milliseconds> default_ttl)
    : storage_(&storage), key_(std::move(key)), record_(std::move(record)), ttl_(default_ttl) {}

std::string_view Conversation::state() const noexcept {
  return record_ ? std::string_view(record_->state) : std::string_view();
}

const boost::json::object& Conversation::data() const noexcept {
  static const boost::json::object kEmpty;
  return record_ ? record_->data : kEmpty;
}

boost::asio::awaitable<void> Conversation::set_state(std::string name,
                                                     std::optional<std::chrono::milliseconds> ttl) {
  if (ttl) {
    ttl_ = ttl;
  }
  StateRecord record = record_.value_or(StateRecord{});
  record.state = std::move(name);
  co_await store(std::move(record));
}

boost::asio::awaitable<void> Conversation::update_data(boost::json::object values) {
  StateRecord record = record_.value_or(StateRecord{});
  for (auto& [name, value] : values) {
    record.data[name] = std::move(value);
  }
  co_await store(std::move(record));
}

boost::asio::awaitable<void> Conversation::set_data(boost::json::object data) {
  StateRecord record = record_.value_or(StateRecord{});
  record.data = std::move(data);
  co_await store(std::move(record));
}

boost::asio::awaitable<void> Conversation::clear() {
  co_await storage_->clear(key_);
  record_.reset();
}

boost::asio::awaitable<void> Conversation::store(StateRecord record) {
  co_await storage_->set(key_, record, ttl_);
  record_ = std::move(record);
}

}  // namespace sluice::fsm
