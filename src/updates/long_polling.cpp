#include <sluice/updates/long_polling.hpp>

#include <algorithm>
#include <exception>
#include <limits>
#include <random>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/string.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

#include <sluice/runtime/logging.hpp>
#include <sluice/telegram/bot_api.hpp>
#include <sluice/telegram/update.hpp>

namespace sluice::updates {


namespace {

// Telegram caps the long-poll timeout at 50 s and the batch at 100 updates.
constexpr std::chrono::seconds kMaxPollTimeout{50};
constexpr std::int64_t kMaxLimit = 100;

// getUpdates with the result left as raw JSON, so that one update that does
// not parse becomes a dead letter instead of failing the whole batch.
struct RawUpdates {
  // The reply's DOM lives only while the reply is read, so the batch is
  // copied. The copy goes into an arena of its own: a few allocations
  // instead of one per object, string and array, all freed with the batch.
  boost::json::array items = boost::json::array(boost::json::make_shared_resource<boost::json::monotonic_resource>());
};

bool read_json(const boost::json::value& json, RawUpdates& out,
               telegram::detail::ReadContext& context) {
  const boost::json::array* array = json.if_array();
  if (array == nullptr) {
    return context.fail_kind("array", json);
  }
  out.items = *array;
  return true;
}

struct GetUpdatesRaw {
  static constexpr std::string_view method_name = "getUpdates";
  using result_type = RawUpdates;

  std::optional<std::int64_t> offset{};
  std::optional<std::int64_t> limit{};
  std::optional<std::int64_t> timeout{};
  std::optional<std::vector<std::string>> allowed_updates{};
};

void write_json(boost::json::value& json, const GetUpdatesRaw& in,
                telegram::detail::WriteContext& context) {
  const telegram::GetUpdates typed{
      .offset = in.offset,
      .limit = in.limit,
      .timeout = in.timeout,
      .allowed_updates = in.allowed_updates,
  };
  telegram::write_json(json, typed, context);
}

// The outcome of one getUpdates: the batch or the error, so that racing it
// against the stop timer never loses an exception.
struct FetchOutcome {
  std::optional<RawUpdates> updates;
  std::exception_ptr error;
};

boost::asio::awaitable<FetchOutcome> fetch(telegram::BotApi& api, GetUpdatesRaw request) {
  FetchOutcome outcome;
  try {
    outcome.updates = co_await api.call(std::move(request));
  } catch (...) {
    outcome.error = std::current_exception();
  }
  co_return outcome;
}

// Hands `update` to the sink and returns what it threw, so that racing it
// against the stop timer never loses an exception.
boost::asio::awaitable<std::exception_ptr> submit(UpdateSink& sink, telegram::Update update,
                                                  HandledCallback on_handled) {
  try {
    co_await sink.submit(std::move(update), std::move(on_handled));
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

std::optional<std::int64_t> read_update_id(const boost::json::value& json) {
  const boost::json::object* object = json.if_object();
  if (object == nullptr) {
    return std::nullopt;
  }
  const boost::json::value* id = object->if_contains("update_id");
  if (id == nullptr || !id->is_int64()) {
    return std::nullopt;
  }
  return id->as_int64();
}

}  // namespace

PollingStopped::PollingStopped(int error_code, const std::string& message)
    : std::runtime_error(message), error_code_(error_code) {}

namespace {

bool is_cancelled(const boost::asio::cancellation_state& state) {
  return state.cancelled() != boost::asio::cancellation_type::none;
}

// Runs a store call of a loop that runs beside the polling loop. When the
// polling loop fails, the && between them cancels this one, and the store
// call then ends with operation_aborted. Returns true in that case, so that
// the loop ends quietly and only the polling error reaches the caller.
boost::asio::awaitable<bool> store_unless_cancelled(boost::asio::awaitable<void> call,
                                                    const boost::asio::cancellation_state& own) {
  bool aborted = false;
  try {
    co_await std::move(call);
  } catch (const boost::system::system_error& error) {
    if (error.code() != boost::asio::error::operation_aborted || !is_cancelled(own)) {
      throw;
    }
    aborted = true;
  }
  co_return aborted;
}

}  // namespace

class LongPoller::Impl {
 public:
  Impl(telegram::BotApi& api, UpdateSink& sink, OffsetStore& store, LongPollingOptions options)
      : api_(api),
        sink_(sink),
        store_(store),
        options_(std::move(options)),
        jitter_(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()),
        stop_timer_(api.get_executor()),
        wake_timer_(api.get_executor()),
        remove_timer_(api.get_executor()),
        save_timer_(api.get_executor()),
        logger_(runtime::module_logger("sluice.updates")) {
    if (options_.timeout < std::chrono::seconds(0) || options_.timeout > kMaxPollTimeout) {
      throw std::invalid_argument("LongPollingOptions::timeout must be 0 to 50 s, got " +
                                  std::to_string(options_.timeout.count()) + " s");
    }
    if (options_.limit < 1 || options_.limit > kMaxLimit) {
      throw std::invalid_argument("LongPollingOptions::limit must be 1 to 100, got " +
                                  std::to_string(options_.limit));
    }
    if (options_.backoff_initial <= std::chrono::milliseconds(0) ||
        options_.backoff_max < options_.backoff_initial) {
      throw std::invalid_argument(
          "LongPollingOptions: backoff_initial must be positive and at most backoff_max");
    }
    if (options_.journal && !store_.has_journal()) {
      throw std::invalid_argument(
          "LongPollingOptions::journal needs an OffsetStore with a journal "
          "(SqlOffsetStore, RedisOffsetStore or MemoryOffsetStore)");
    }
    stop_timer_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> finish(bool confirm);

  void stop() {
    stopping_ = true;
    // Moving the expiry to the past completes the waits in progress and
    // every later one at once.
    stop_timer_.expires_at(std::chrono::steady_clock::time_point::min());
    wake_timer_.cancel();
    remove_timer_.cancel();
    save_timer_.cancel();
  }

  OffsetTracker tracker_;
  LongPollingStats stats_;

 private:
  boost::asio::awaitable<void> poll_plain();
  boost::asio::awaitable<bool> poll_once();
  boost::asio::awaitable<void> save_handled();
  template <class HasWork, class Step>
  boost::asio::awaitable<void> work_beside_polling(boost::asio::steady_timer& timer, HasWork has_work, Step step);
  boost::asio::awaitable<std::optional<RawUpdates>> fetch_batch(std::optional<std::int64_t> offset);
  boost::asio::awaitable<bool> accept(boost::json::value& json);
  boost::asio::awaitable<void> take(boost::json::value& json, std::optional<std::int64_t> update_id);
  boost::asio::awaitable<void> poll_journaled();
  boost::asio::awaitable<std::vector<boost::json::value*>> store_batch(RawUpdates& batch);
  boost::asio::awaitable<void> take_all(std::vector<boost::json::value*> fresh);
  boost::asio::awaitable<void> remove_handled();
  boost::asio::awaitable<void> flush_removals();
  void done_with(std::int64_t update_id);
  std::optional<std::int64_t> next_offset() const noexcept;
  boost::asio::awaitable<void> save_offset();
  boost::asio::awaitable<void> sleep(std::chrono::steady_clock::duration delay);
  boost::asio::awaitable<void> wait_for_progress(std::optional<std::int64_t> offset);
  boost::asio::awaitable<void> wait_for_room();
  std::int64_t window() const noexcept;
  std::chrono::milliseconds next_backoff();
  void handle_poll_error(const std::exception_ptr& error, std::chrono::steady_clock::duration& delay);

  // True once the coroutine that awaits run() was cancelled. The state is
  // read at the start of run(); no co_await appears inside a condition,
  // which g++ 12 has miscompiled in coroutines.
  bool cancelled() const { return cancellation_.cancelled() != boost::asio::cancellation_type::none; }

  boost::asio::cancellation_state cancellation_;

  telegram::BotApi& api_;
  UpdateSink& sink_;
  OffsetStore& store_;
  LongPollingOptions options_;
  std::mt19937_64 jitter_;
  boost::asio::steady_timer stop_timer_;
  boost::asio::steady_timer wake_timer_;
  // Woken when a handled update's journal entry can be removed.
  boost::asio::steady_timer remove_timer_;
  // Woken when handling moves the confirmed offset (without the journal).
  boost::asio::steady_timer save_timer_;
  std::shared_ptr<spdlog::logger> logger_;
  // Journal entries left by the previous run, handed to the sink first.
  std::vector<JournalEntry> replay_;
  // Handled updates whose journal entries are still to be removed.
  std::vector<std::int64_t> removable_;
  std::optional<std::int64_t> saved_offset_;
  // Set from the arrival of a batch until it is stored.
  bool holding_removals_ = false;
  std::chrono::milliseconds backoff_{0};
  bool stopping_ = false;
  bool started_ = false;
  // Shared with the HandledCallback of every update taken by the sink, which
  // may run after this object is gone (a sink that outlives the poller).
  std::shared_ptr<Impl*> self_ = std::make_shared<Impl*>(this);

 public:
  ~Impl() { *self_ = nullptr; }
};

boost::asio::awaitable<void> LongPoller::Impl::run() {
  cancellation_ = co_await boost::asio::this_coro::cancellation_state;
  if (!started_) {
    started_ = true;
    saved_offset_ = co_await store_.load();
    std::optional<std::int64_t> start = saved_offset_;
    if (options_.journal) {
      replay_ = co_await store_.journal_load();
      if (!replay_.empty() && (!start || replay_.front().update_id < *start)) {
        start = replay_.front().update_id;
      }
    }
    tracker_ = OffsetTracker(start);
    logger_->info("long polling started timeout_s={} limit={} offset={} journal={} journaled={}",
                  options_.timeout.count(), options_.limit,
                  saved_offset_ ? std::to_string(*saved_offset_) : "none", options_.journal,
                  replay_.size());
  }
  using namespace boost::asio::experimental::awaitable_operators;
  if (options_.journal) {
    co_await (poll_journaled() && remove_handled());
  } else {
    co_await (poll_plain() && save_handled());
  }
  logger_->info("long polling stopped offset={} pending={} polls={} received={} duplicates={} "
                "dead_letters={} poll_errors={}",
                tracker_.confirmed_offset() ? std::to_string(*tracker_.confirmed_offset()) : "none",
                tracker_.pending(), stats_.polls, stats_.updates_received, stats_.duplicates_skipped,
                stats_.dead_letters, stats_.poll_errors);
}

// Runs `step` while `has_work()` is true and otherwise waits on `timer`,
// which the poller cancels when there is work or at stop. It runs beside the
// polling loop, until the poller stops or the && with that loop cancels it.
template <class HasWork, class Step>
boost::asio::awaitable<void> LongPoller::Impl::work_beside_polling(boost::asio::steady_timer& timer,
                                                                   HasWork has_work, Step step) {
  const boost::asio::cancellation_state own = co_await boost::asio::this_coro::cancellation_state;
  while (!is_cancelled(own)) {
    if (has_work()) {
      boost::asio::awaitable<void> call = step();
      const bool ended = co_await store_unless_cancelled(std::move(call), own);
      if (ended) {
        break;
      }
      continue;
    }
    if (stopping_ || cancelled()) {
      break;
    }
    timer.expires_at(std::chrono::steady_clock::time_point::max());
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

// Polls without the journal: each update is confirmed once it and every
// update before it are handled.
boost::asio::awaitable<void> LongPoller::Impl::poll_plain() {
  while (!stopping_ && !cancelled()) {
    co_await wait_for_room();
    if (stopping_) {
      break;
    }
    const std::optional<std::int64_t> offset = tracker_.confirmed_offset();
    const bool got_new = co_await poll_once();
    if (!got_new && !stopping_ && tracker_.confirmed_offset() == offset && tracker_.pending() > 0) {
      // Everything Telegram returned is still being handled: polling again
      // would return the same updates at once.
      co_await wait_for_progress(offset);
    }
  }
}

// Saves the confirmed offset whenever handling moves it, one save at a time,
// so that a process killed during a long poll does not handle again what it
// handled. Runs beside poll_plain() until the poller stops.
boost::asio::awaitable<void> LongPoller::Impl::save_handled() {
  auto offset_moved = [this] {
    const std::optional<std::int64_t> offset = tracker_.confirmed_offset();
    return offset && offset != saved_offset_;
  };
  auto save = [this] { return save_offset(); };
  return work_beside_polling(save_timer_, offset_moved, save);
}

// Runs one getUpdates and hands its new updates to the sink. Returns whether
// the batch held an update not received before.
boost::asio::awaitable<bool> LongPoller::Impl::poll_once() {
  std::optional<RawUpdates> batch = co_await fetch_batch(tracker_.confirmed_offset());
  if (!batch) {
    co_return false;
  }
  bool got_new = false;
  for (boost::json::value& item : batch->items) {
    if (stopping_) {
      // Updates not taken stay unconfirmed; Telegram sends them again.
      break;
    }
    got_new = co_await accept(item) || got_new;
  }
  co_return got_new;
}

// Runs one getUpdates from `offset`, raced against stop(). Returns nothing
// when stopped or when it failed; a failure is logged and waited out.
boost::asio::awaitable<std::optional<RawUpdates>> LongPoller::Impl::fetch_batch(
    std::optional<std::int64_t> offset) {
  using namespace boost::asio::experimental::awaitable_operators;

  GetUpdatesRaw request{
      .offset = offset,
      .limit = options_.limit,
      .timeout = options_.timeout.count(),
      .allowed_updates = options_.allowed_updates,
  };
  ++stats_.polls;
  auto fetching = fetch(api_, std::move(request));
  auto stopped = stop_timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  auto first = co_await (std::move(fetching) || std::move(stopped));
  if (first.index() == 1 || stopping_) {
    co_return std::nullopt;
  }
  FetchOutcome outcome = std::move(std::get<0>(first));

  if (outcome.error) {
    if (cancelled()) {
      co_return std::nullopt;
    }
    std::chrono::steady_clock::duration delay{};
    handle_poll_error(outcome.error, delay);
    co_await sleep(delay);
    co_return std::nullopt;
  }
  backoff_ = std::chrono::milliseconds(0);
  if (options_.journal && outcome.updates && !outcome.updates->items.empty()) {
    // The batch is stored next, and the next getUpdates waits for it.
    holding_removals_ = true;
  }
  co_return std::move(outcome.updates);
}

// Takes one update of a batch. Returns whether it was new.
boost::asio::awaitable<bool> LongPoller::Impl::accept(boost::json::value& json) {
  const std::optional<std::int64_t> update_id = read_update_id(json);
  if (update_id && !tracker_.receive(*update_id)) {
    ++stats_.duplicates_skipped;
    co_return false;
  }
  ++stats_.updates_received;
  co_await take(json, update_id);
  co_return true;
}

// Parses a received update and hands it to the sink, or stores it as a
// dead letter.
boost::asio::awaitable<void> LongPoller::Impl::take(boost::json::value& json,
                                                     std::optional<std::int64_t> update_id) {
  telegram::Update update;
  std::optional<telegram::ParseError> error;
  if (!update_id) {
    error = telegram::ParseError("Update.update_id", "missing or not an integer");
  } else {
    error = telegram::try_from_json(json, update);
  }
  if (error) {
    ++stats_.dead_letters;
    logger_->error("update is invalid and stored as a dead letter update_id={} error=\"{}\"",
                   update_id ? std::to_string(*update_id) : "none", error->what());
    DeadLetter letter{
        .update_id = update_id,
        .raw_json = boost::json::serialize(json),
        .error = error->what(),
    };
    co_await store_.add_dead_letter(std::move(letter));
    if (update_id) {
      done_with(*update_id);
    }
    co_return;
  }

  std::weak_ptr<Impl*> self = self_;
  HandledCallback on_handled = [self](std::int64_t id) {
    if (auto owner = self.lock(); owner && *owner != nullptr) {
      (*owner)->done_with(id);
    }
  };
  // A full sink makes this wait, and stop() ends the wait: an update the
  // sink did not take, or could not take because it is closed, stays
  // pending. That keeps the watermark below it, so it is fetched again
  // after a restart.
  if (sink_.has_room()) {
    // The common case skips the race below, which costs two coroutines and
    // a timer wait per update.
    co_await sink_.submit(std::move(update), std::move(on_handled));
    co_return;
  }
  using namespace boost::asio::experimental::awaitable_operators;
  auto taking = submit(sink_, std::move(update), std::move(on_handled));
  auto stopped = stop_timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  auto first = co_await (std::move(taking) || std::move(stopped));
  if (first.index() == 0 && std::get<0>(first)) {
    std::rethrow_exception(std::get<0>(first));
  }
}

void LongPoller::Impl::done_with(std::int64_t update_id) {
  tracker_.handled(update_id);
  wake_timer_.cancel();
  if (options_.journal) {
    removable_.push_back(update_id);
    remove_timer_.cancel();
  } else {
    save_timer_.cancel();
  }
}

// The offset for the next getUpdates with the journal: past every update
// received, since each one is stored.
std::optional<std::int64_t> LongPoller::Impl::next_offset() const noexcept {
  const std::optional<std::int64_t> highest = tracker_.highest_received();
  if (highest) {
    return *highest + 1;
  }
  return tracker_.confirmed_offset();
}

// The polling loop with the journal: hands the sink what the previous run
// left in the journal, then polls until stopped.
boost::asio::awaitable<void> LongPoller::Impl::poll_journaled() {
  std::vector<JournalEntry> replay = std::move(replay_);
  replay_.clear();
  for (JournalEntry& entry : replay) {
    if (stopping_ || cancelled()) {
      break;
    }
    if (!tracker_.receive(entry.update_id)) {
      continue;
    }
    ++stats_.updates_received;
    boost::system::error_code parse_error;
    boost::json::value json = boost::json::parse(entry.raw_json, parse_error);
    if (parse_error) {
      // Only a store edited by hand contains text that is not JSON.
      json = boost::json::string(entry.raw_json);
    }
    co_await take(json, entry.update_id);
  }
  using namespace boost::asio::experimental::awaitable_operators;
  std::optional<RawUpdates> batch = co_await fetch_batch(next_offset());
  while (!stopping_ && !cancelled()) {
    std::optional<RawUpdates> current = std::move(batch);
    batch.reset();
    if (!current) {
      batch = co_await fetch_batch(next_offset());
      continue;
    }
    std::vector<boost::json::value*> fresh = co_await store_batch(*current);
    holding_removals_ = false;
    remove_timer_.cancel();
    if (fresh.empty()) {
      batch = co_await fetch_batch(next_offset());
      continue;
    }
    // The batch is stored, so the next getUpdates may confirm it while the
    // sink takes it. The fetch goes first so that its request is sent
    // before the sink starts the handlers.
    auto fetching = fetch_batch(next_offset());
    auto taking = take_all(std::move(fresh));
    batch = co_await (std::move(fetching) && std::move(taking));
  }
}

// Stores the new updates of `batch` and the offset past them in the
// journal. Returns them, in batch order; an update without an update_id
// becomes a dead letter at once.
boost::asio::awaitable<std::vector<boost::json::value*>> LongPoller::Impl::store_batch(RawUpdates& batch) {
  std::vector<JournalEntry> entries;
  std::vector<boost::json::value*> fresh;
  entries.reserve(batch.items.size());
  fresh.reserve(batch.items.size());
  for (boost::json::value& item : batch.items) {
    const std::optional<std::int64_t> update_id = read_update_id(item);
    if (!update_id) {
      // Without an update_id it cannot be journaled or confirmed.
      ++stats_.updates_received;
      co_await take(item, std::nullopt);
      continue;
    }
    if (!tracker_.receive(*update_id)) {
      ++stats_.duplicates_skipped;
      continue;
    }
    ++stats_.updates_received;
    entries.push_back(JournalEntry{.update_id = *update_id, .raw_json = boost::json::serialize(item)});
    fresh.push_back(&item);
  }

  if (!entries.empty()) {
    const std::int64_t offset = *next_offset();
    co_await store_.journal_append(std::move(entries), offset);
    saved_offset_ = offset;
  }
  co_return fresh;
}

// Hands stored updates to the sink in order. The batch they point into
// must outlive the call.
boost::asio::awaitable<void> LongPoller::Impl::take_all(std::vector<boost::json::value*> fresh) {
  for (boost::json::value* item : fresh) {
    // Yielding to the loop before each update lets the concurrent
    // getUpdates send its request instead of waiting for the whole batch.
    co_await boost::asio::post(api_.get_executor(), boost::asio::use_awaitable);
    if (stopping_) {
      // Updates not taken stay in the journal for the next run.
      break;
    }
    co_await take(*item, read_update_id(*item));
  }
}

// Removes the journal entries of handled updates, in batches: the ids
// handled while one removal runs go in the next. No removal starts between
// the arrival of a batch and its store: the store would wait for it, and
// the next getUpdates for the store.
boost::asio::awaitable<void> LongPoller::Impl::remove_handled() {
  auto ids_waiting = [this] { return !removable_.empty() && !holding_removals_; };
  auto remove = [this] { return flush_removals(); };
  return work_beside_polling(remove_timer_, ids_waiting, remove);
}

boost::asio::awaitable<void> LongPoller::Impl::flush_removals() {
  std::vector<std::int64_t> ids;
  ids.swap(removable_);
  co_await store_.journal_remove(std::move(ids));
}

boost::asio::awaitable<void> LongPoller::Impl::save_offset() {
  const std::optional<std::int64_t> offset = tracker_.confirmed_offset();
  if (!offset || offset == saved_offset_) {
    co_return;
  }
  co_await store_.save(*offset);
  saved_offset_ = offset;
}

boost::asio::awaitable<void> LongPoller::Impl::sleep(std::chrono::steady_clock::duration delay) {
  const auto until = std::chrono::steady_clock::now() + delay;
  // The wake timer is also cancelled by every handled update, so wait again
  // until the time is up.
  while (!stopping_ && std::chrono::steady_clock::now() < until && !cancelled()) {
    wake_timer_.expires_at(until);
    co_await wake_timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

boost::asio::awaitable<void> LongPoller::Impl::wait_for_progress(std::optional<std::int64_t> offset) {
  while (!stopping_ && tracker_.confirmed_offset() == offset && tracker_.pending() > 0 &&
         !cancelled()) {
    wake_timer_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await wake_timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

// Width of the update_id range from the watermark to the newest update
// received: a getUpdates from the watermark returns these again first.
std::int64_t LongPoller::Impl::window() const noexcept {
  const auto offset = tracker_.confirmed_offset();
  const auto highest = tracker_.highest_received();
  if (!offset || !highest || *highest < *offset) {
    return 0;
  }
  return *highest - *offset + 1;
}

// Waits until a getUpdates from the watermark can return at least half a
// batch of new updates. Polling on every single handled update would fetch
// one new update per round trip.
boost::asio::awaitable<void> LongPoller::Impl::wait_for_room() {
  while (!stopping_ && tracker_.pending() > 0 && window() > options_.limit / 2 &&
         !cancelled()) {
    wake_timer_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await wake_timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

std::chrono::milliseconds LongPoller::Impl::next_backoff() {
  backoff_ = backoff_.count() == 0 ? options_.backoff_initial
                                   : std::min(backoff_ * 2, options_.backoff_max);
  std::uniform_int_distribution<std::int64_t> draw(backoff_.count() / 2, backoff_.count());
  return std::chrono::milliseconds(draw(jitter_));
}

void LongPoller::Impl::handle_poll_error(const std::exception_ptr& error,
                                         std::chrono::steady_clock::duration& delay) {
  ++stats_.poll_errors;
  try {
    std::rethrow_exception(error);
  } catch (const telegram::TelegramError& telegram_error) {
    const int code = telegram_error.error_code().value_or(0);
    if (code == 401) {
      logger_->error("getUpdates rejected the token; polling stops error=\"{}\"",
                     telegram_error.what());
      throw PollingStopped(401, std::string("getUpdates failed with 401 Unauthorized: the bot "
                                            "token is invalid or was revoked (") +
                                    telegram_error.description() + ")");
    }
    if (code == 409) {
      logger_->error("getUpdates conflicts; polling stops error=\"{}\"", telegram_error.what());
      throw PollingStopped(409, std::string("getUpdates failed with 409 Conflict: a webhook is "
                                            "set (call delete_webhook, or set "
                                            "LongPollingOptions::delete_webhook) or another process polls "
                                            "with this token (") +
                                    telegram_error.description() + ")");
    }
    if (telegram_error.retry_after()) {
      delay = *telegram_error.retry_after();
      logger_->warn("getUpdates hit a flood limit retry_after_s={}",
                    telegram_error.retry_after()->count());
      return;
    }
    delay = next_backoff();
    logger_->warn("getUpdates failed error=\"{}\" retry_in_ms={}", telegram_error.what(),
                  std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  } catch (const std::exception& other) {
    delay = next_backoff();
    logger_->warn("getUpdates failed error=\"{}\" retry_in_ms={}", other.what(),
                  std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  }
}

boost::asio::awaitable<void> LongPoller::Impl::finish(bool confirm) {
  std::optional<std::int64_t> offset;
  if (options_.journal) {
    // The offset was stored with each batch; an entry left in the journal
    // is handled by the next run.
    if (!removable_.empty()) {
      co_await flush_removals();
    }
    offset = next_offset();
  } else {
    co_await save_offset();
    offset = tracker_.confirmed_offset();
  }
  if (!offset || !confirm) {
    co_return;
  }
  GetUpdatesRaw request{.offset = offset, .limit = 1, .timeout = 0, .allowed_updates = std::nullopt};
  try {
    co_await api_.call(std::move(request));
    logger_->info("offset confirmed offset={}", *offset);
  } catch (const std::exception& error) {
    logger_->warn("final getUpdates failed; the stored offset still skips handled updates "
                  "offset={} error=\"{}\"",
                  *offset, error.what());
  }
}

LongPoller::LongPoller(telegram::BotApi& api, UpdateSink& sink, OffsetStore& store,
                       LongPollingOptions options)
    : impl_(std::make_unique<Impl>(api, sink, store, std::move(options))) {}

LongPoller::~LongPoller() = default;

boost::asio::awaitable<void> LongPoller::run() { return impl_->run(); }
boost::asio::awaitable<void> LongPoller::finish(bool confirm) { return impl_->finish(confirm); }
void LongPoller::stop() { impl_->stop(); }
const OffsetTracker& LongPoller::tracker() const noexcept { return impl_->tracker_; }
const LongPollingStats& LongPoller::stats() const noexcept { return impl_->stats_; }

}  // namespace sluice::updates
