// RedisStorage: conversation states and cross-process locks in Redis.

#include <sluice/fsm/storage.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <stdexcept>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

#include <sluice/redis/client.hpp>
#include <sluice/redis/command.hpp>
#include <sluice/redis/reply.hpp>
#include <sluice/redis/script.hpp>
#include <sluice/runtime/logging.hpp>

#include "fsm/key_lock_table.hpp"

namespace sluice::fsm {

namespace detail {

// Shared by a held lock and its renewal task: the holder sets `stopped`
// and cancels `wake` when it lets the lock go.
struct LockRenewal {
  explicit LockRenewal(boost::asio::any_io_executor executor) : wake(std::move(executor)) {}
  boost::asio::steady_timer wake;
  bool stopped = false;
};

}  // namespace detail

namespace {

// Keys asked for per SCAN call in move_chat: large enough that a keyspace
// of a million keys takes about 2,000 round trips, small enough that one
// call does not block Redis for long.
constexpr int kScanCount = 500;

// Deletes the lock only when it still holds this holder's token, so a
// holder whose lock expired and was taken by another never deletes it.
constexpr const char* kReleaseScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

// Extends the lock's time to live (ARGV[2] ms) only while it still holds
// this holder's token. Returns 1 when extended.
constexpr const char* kRenewScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";

// Moves one record with its remaining time to live; a record already under
// the new key is kept. Returns 1 when the record moved.
constexpr const char* kMoveScript =
    "local value = redis.call('GET', KEYS[1])\n"
    "if not value then return 0 end\n"
    "local ttl = redis.call('PTTL', KEYS[1])\n"
    "redis.call('DEL', KEYS[1])\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
    "if ttl > 0 then\n"
    "  redis.call('SET', KEYS[2], value, 'PX', ttl)\n"
    "else\n"
    "  redis.call('SET', KEYS[2], value)\n"
    "end\n"
    "return 1\n";

// Escapes the glob characters of SCAN's MATCH pattern.
std::string escape_glob(std::string_view text) {
  std::string escaped;
  for (const char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      escaped += '\\';
    }
    escaped += c;
  }
  return escaped;
}

StateRecord parse_record(const std::string& text, const std::string& redis_key) {
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(text, error);
  const boost::json::object* object = error ? nullptr : value.if_object();
  const boost::json::value* state = object != nullptr ? object->if_contains("state") : nullptr;
  const boost::json::value* data = object != nullptr ? object->if_contains("data") : nullptr;
  if (state == nullptr || !state->is_string() || data == nullptr || !data->is_object()) {
    throw std::runtime_error("Redis key " + redis_key +
                             " does not hold a conversation record: expected a JSON object "
                             "with a string \"state\" and an object \"data\"");
  }
  return StateRecord{.state = std::string(state->as_string()), .data = data->as_object()};
}

// Deletes a lock if it holds `token`, then drops the in-process lock. It
// runs as a background task of the storage for a KeyLock destroyed without
// release(), so its parameters are by value: the task outlives its caller.
boost::asio::awaitable<void> release_in_background(redis::Client* client, const redis::Script* script,
                                                   std::string lock_key, std::string token,
                                                   detail::KeyLockTable::Lock local) {
  const redis::Arguments keys(lock_key);
  const redis::Arguments args(token);
  redis::Reply reply = co_await client->eval(*script, keys, args);
  reply.throw_if_error("EVALSHA (fsm lock release)");
  local.release();
}

// Extends a held lock every lock_ttl / 3 until its holder stops the
// renewal, the lock turns out lost, or the task is cancelled. A failed
// renewal is logged and tried again at the next turn, which still comes
// before the lock would expire.
boost::asio::awaitable<void> renew_until_released(redis::Client* client, const redis::Script* script,
                                                  std::string lock_key, std::string token,
                                                  std::chrono::milliseconds ttl,
                                                  std::shared_ptr<detail::LockRenewal> renewal) {
  const auto interval = std::max(ttl / 3, std::chrono::milliseconds(1));
  const redis::Arguments keys(lock_key);
  const redis::Arguments args(token, ttl.count());
  auto logger = runtime::module_logger("sluice.fsm");
  while (!renewal->stopped) {
    renewal->wake.expires_after(interval);
    auto [waited] = co_await renewal->wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (renewal->stopped || waited == boost::asio::error::operation_aborted) {
      co_return;
    }
    std::string failure;
    bool cancelled = false;
    try {
      redis::Reply reply = co_await client->eval(*script, keys, args);
      reply.throw_if_error("EVALSHA (fsm lock renewal)");
      if (reply.as_integer() == 0 && !renewal->stopped) {
        logger->warn("fsm lock lost while held: it expired or was deleted key={}", lock_key);
        co_return;
      }
    } catch (const boost::system::system_error& error) {
      cancelled = error.code() == boost::asio::error::operation_aborted;
      failure = error.what();
    } catch (const std::exception& error) {
      failure = error.what();
    }
    if (cancelled || renewal->stopped) {
      co_return;
    }
    if (!failure.empty()) {
      logger->warn("fsm lock renewal failed; trying again in interval_ms={} key={} error={}", interval.count(),
                   lock_key, failure);
    }
  }
}

}  // namespace

// A lock held in Redis plus the in-process lock taken before it.
class RedisStorage::RedisLockHolder final : public KeyLock::Holder {
 public:
  RedisLockHolder(RedisStorage& storage, std::string lock_key, std::string token,
                  detail::KeyLockTable::Lock local, std::shared_ptr<detail::LockRenewal> renewal)
      : storage_(&storage),
        lock_key_(std::move(lock_key)),
        token_(std::move(token)),
        local_(std::move(local)),
        renewal_(std::move(renewal)) {}

  ~RedisLockHolder() override {
    stop_renewal();
    if (!local_) {
      return;
    }
    schedule(*storage_, std::move(lock_key_), std::move(token_), std::move(local_));
  }

  RedisLockHolder(const RedisLockHolder&) = delete;
  RedisLockHolder& operator=(const RedisLockHolder&) = delete;

  boost::asio::awaitable<void> release() override {
    stop_renewal();
    // Taken out first, so that a throw or a cancellation below leaves the
    // release to the background path of the destructor.
    detail::KeyLockTable::Lock local = std::move(local_);
    const redis::Arguments keys(lock_key_);
    const redis::Arguments args(token_);
    std::exception_ptr error;
    try {
      redis::Reply reply = co_await storage_->client_->eval(*storage_->release_script_, keys, args);
      reply.throw_if_error("EVALSHA (fsm lock release)");
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      // The lock may still be ours on the server: try once more in the
      // background, and let its time to live end it otherwise.
      schedule(*storage_, std::move(lock_key_), std::move(token_), std::move(local));
      std::rethrow_exception(error);
    }
    local.release();
  }

  // Starts the background release of a lock in the storage's TaskSet.
  static void schedule(RedisStorage& storage, std::string lock_key, std::string token,
                       detail::KeyLockTable::Lock local) noexcept {
    try {
      std::string name = "fsm lock release " + lock_key;
      storage.releases_.spawn(std::move(name),
                              release_in_background(storage.client_, storage.release_script_.get(),
                                                    std::move(lock_key), std::move(token), std::move(local)));
    } catch (const std::exception& error) {
      // After close(): the lock ends when its time to live does.
      runtime::module_logger("sluice.fsm")
          ->warn("fsm lock not released; it expires after lock_ttl_ms={} error={}",
                 storage.options_.lock_ttl.count(), error.what());
    }
  }

 private:
  void stop_renewal() noexcept {
    if (renewal_) {
      renewal_->stopped = true;
      renewal_->wake.cancel();
      renewal_.reset();
    }
  }

  RedisStorage* storage_;
  std::string lock_key_;
  std::string token_;
  detail::KeyLockTable::Lock local_;
  std::shared_ptr<detail::LockRenewal> renewal_;
};

RedisStorage::RedisStorage(redis::Client& client, RedisStorageOptions options)
    : client_(&client),
      options_(std::move(options)),
      release_script_(std::make_unique<redis::Script>(kReleaseScript)),
      renew_script_(std::make_unique<redis::Script>(kRenewScript)),
      move_script_(std::make_unique<redis::Script>(kMoveScript)),
      locks_(std::make_unique<detail::KeyLockTable>()),
      jitter_(options_.jitter_seed ? *options_.jitter_seed : std::random_device{}()),
      releases_(client.get_executor(), "fsm lock tasks") {
  if (options_.lock_ttl <= std::chrono::milliseconds(0) || options_.lock_retry_min <= std::chrono::milliseconds(0) ||
      options_.lock_retry_max < options_.lock_retry_min) {
    throw std::invalid_argument("RedisStorageOptions: lock_ttl (" + std::to_string(options_.lock_ttl.count()) +
                                " ms) and lock_retry_min (" + std::to_string(options_.lock_retry_min.count()) +
                                " ms) must be positive and lock_retry_max (" +
                                std::to_string(options_.lock_retry_max.count()) + " ms) at least lock_retry_min");
  }
}

RedisStorage::~RedisStorage() = default;

std::shared_ptr<detail::LockRenewal> RedisStorage::start_renewal(const std::string& lock_key, const std::string& token) {
  if (!options_.renew_locks) {
    return nullptr;
  }
  auto renewal = std::make_shared<detail::LockRenewal>(client_->get_executor());
  try {
    std::string name = "fsm lock renewal " + lock_key;
    releases_.spawn(std::move(name), renew_until_released(client_, renew_script_.get(), lock_key, token,
                                                          options_.lock_ttl, renewal));
  } catch (const std::exception& error) {
    // After close(): the lock lasts lock_ttl from now.
    runtime::module_logger("sluice.fsm")
        ->warn("fsm lock not renewed; it expires after lock_ttl_ms={} error={}", options_.lock_ttl.count(),
               error.what());
    return nullptr;
  }
  return renewal;
}

std::string RedisStorage::state_key(const StorageKey& key) const { return options_.prefix + ":" + key.to_string(); }

std::string RedisStorage::lock_key(const StorageKey& key) const {
  return options_.prefix + ":lock:" + key.to_string();
}

std::size_t RedisStorage::lock_entries() const noexcept { return locks_->size(); }

std::string RedisStorage::random_token() {
  // 128 bits from the system's entropy source: tokens of different
  // processes must never collide, which a seeded generator cannot promise.
  std::string token;
  char part[9];
  for (int i = 0; i < 4; ++i) {
    std::snprintf(part, sizeof(part), "%08x", static_cast<unsigned>(token_source_()));
    token += part;
  }
  return token;
}

boost::asio::awaitable<std::optional<StateRecord>> RedisStorage::get(StorageKey key) {
  const std::string redis_key = state_key(key);
  std::optional<std::string> text = co_await client_->get(redis_key);
  if (!text) {
    co_return std::nullopt;
  }
  co_return parse_record(*text, redis_key);
}

boost::asio::awaitable<void> RedisStorage::set(StorageKey key, StateRecord record,
                                               std::optional<std::chrono::milliseconds> ttl) {
  const std::string redis_key = state_key(key);
  if (ttl && *ttl <= std::chrono::milliseconds(0)) {
    co_await client_->del(redis_key);
    co_return;
  }
  boost::json::object value;
  value["state"] = std::move(record.state);
  value["data"] = std::move(record.data);
  const std::string text = boost::json::serialize(value);
  const redis::SetOptions options{.expire = ttl.value_or(std::chrono::milliseconds(0))};
  co_await client_->set(redis_key, text, options);
}

boost::asio::awaitable<void> RedisStorage::clear(StorageKey key) {
  const std::string redis_key = state_key(key);
  co_await client_->del(redis_key);
}

boost::asio::awaitable<KeyLock> RedisStorage::lock(StorageKey key) {
  using Clock = std::chrono::steady_clock;
  detail::KeyLockTable::Lock local = co_await locks_->acquire(key.to_string());
  std::string redis_key = lock_key(key);
  std::string token = random_token();
  const auto started = Clock::now();
  const auto deadline = started + options_.lock_timeout;
  auto delay = options_.lock_retry_min;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  const redis::SetOptions set_options{.expire = options_.lock_ttl, .condition = redis::SetCondition::if_not_exists};

  // Bounded by lock_timeout: a pass that neither returns nor throws waits
  // on the timer, and the first pass after the deadline throws LockTimeout.
  for (std::size_t attempt = 1;; ++attempt) {
    bool taken = false;
    std::exception_ptr error;
    try {
      taken = co_await client_->set(redis_key, token, set_options);
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      // The SET may have run on the server before the error or the
      // cancellation: delete the lock if it holds our token.
      RedisLockHolder::schedule(*this, redis_key, token, std::move(local));
      std::rethrow_exception(error);
    }
    if (taken) {
      co_return KeyLock(std::make_unique<RedisLockHolder>(*this, redis_key, token, std::move(local),
                                                          start_renewal(redis_key, token)));
    }

    const auto now = Clock::now();
    if (now >= deadline) {
      const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - started);
      throw LockTimeout(redis_key, "fsm lock " + redis_key + " not acquired within " +
                                       std::to_string(waited.count()) + " ms after " + std::to_string(attempt) +
                                       " attempts; another process holds it (lock_ttl " +
                                       std::to_string(options_.lock_ttl.count()) + " ms, lock_timeout " +
                                       std::to_string(options_.lock_timeout.count()) + " ms)");
    }
    std::uniform_int_distribution<std::int64_t> jitter(delay.count() / 2, delay.count());
    auto wait = std::chrono::milliseconds(jitter(jitter_));
    wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                              std::chrono::milliseconds(1));
    timer.expires_after(wait);
    co_await timer.async_wait(boost::asio::use_awaitable);
    delay = std::min(delay * 2, options_.lock_retry_max);
  }
}

boost::asio::awaitable<std::size_t> RedisStorage::move_chat(std::int64_t bot_id, std::int64_t old_chat_id,
                                                            std::int64_t new_chat_id) {
  const std::string key_prefix = options_.prefix + ":";
  const std::string pattern =
      escape_glob(key_prefix) + std::to_string(bot_id) + ":" + std::to_string(old_chat_id) + ":*";

  // SCAN may return a key more than once; the move script returns 0 for a
  // key already moved.
  std::size_t moved = 0;
  std::string cursor = "0";
  do {
    redis::Reply reply = co_await client_->command("SCAN", cursor, "MATCH", pattern, "COUNT", kScanCount);
    reply.throw_if_error("SCAN");
    auto& parts = reply.as_array();
    if (parts.size() != 2) {
      throw std::runtime_error("SCAN returned " + reply.to_debug_string() + "; expected [cursor, keys]");
    }
    cursor = parts[0].as_string();
    for (const redis::Reply& found : parts[1].as_array()) {
      const std::string& old_redis_key = found.as_string();
      std::optional<StorageKey> key = StorageKey::parse(std::string_view(old_redis_key).substr(key_prefix.size()));
      if (!key || key->bot_id != bot_id || key->chat_id != old_chat_id) {
        continue;
      }
      key->chat_id = new_chat_id;
      // The chat strategy stores the chat id as user id.
      if (key->user_id == old_chat_id) {
        key->user_id = new_chat_id;
      }
      const redis::Arguments keys(old_redis_key, state_key(*key));
      const redis::Arguments no_args;
      redis::Reply result = co_await client_->eval(*move_script_, keys, no_args);
      result.throw_if_error("EVALSHA (fsm move_chat)");
      if (result.as_integer() == 1) {
        ++moved;
      }
    }
  } while (cursor != "0");
  co_return moved;
}

boost::asio::awaitable<void> RedisStorage::close() { co_await releases_.close(options_.close_timeout); }

}  // namespace sluice::fsm
