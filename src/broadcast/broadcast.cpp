// The broadcast engine: pages from the source, filtered by the checkpoint
// store, fed to runtime::for_each_bounded, one send per recipient.
#include <sluice/broadcast/broadcast.hpp>

#include <algorithm>
#include <deque>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <sluice/runtime/logging.hpp>
#include <sluice/runtime/task_group.hpp>
#include <sluice/telegram/bot_api.hpp>
#include <sluice/telegram/errors.hpp>

namespace sluice::broadcast {

namespace {

// The first failures of a run are logged one by one; after that only every
// kFailureLogEvery-th, with the number left out, so a dead network does not
// write one line per recipient.
constexpr std::uint64_t kFailuresLoggedInFull = 10;
constexpr std::uint64_t kFailureLogEvery = 1000;

using Clock = std::chrono::steady_clock;

std::shared_ptr<spdlog::logger> logger() {
  static const std::shared_ptr<spdlog::logger> instance = runtime::module_logger("sluice.broadcast");
  return instance;
}

// The error of one send, captured inside the catch block because a
// coroutine cannot co_await there.
struct SendFailure {
  Outcome outcome = Outcome::delivered;
  std::optional<std::int64_t> migrate_to{};
  std::string detail{};
};

boost::asio::awaitable<SendFailure> try_send(const SendFunction& send, std::int64_t chat_id) {
  SendFailure failure;
  try {
    co_await send(chat_id);
  } catch (const telegram::TelegramError& error) {
    if (error.error_code() == 403) {
      failure.outcome = Outcome::blocked;
    } else if (error.migrate_to_chat_id()) {
      failure.outcome = Outcome::failed;
      failure.migrate_to = error.migrate_to_chat_id();
    } else {
      failure.outcome = Outcome::failed;
    }
    failure.detail = error.what();
  } catch (const telegram::BotApiError& error) {
    failure.outcome = Outcome::failed;
    failure.detail = error.what();
  }
  co_return failure;
}

boost::asio::awaitable<void> send_text(telegram::BotApi* api, std::shared_ptr<const TextMessage> message,
                                       std::int64_t chat_id) {
  telegram::SendMessage request{};
  request.chat_id = chat_id;
  request.text = message->text;
  if (!message->parse_mode.empty()) {
    request.parse_mode = message->parse_mode;
  }
  if (message->allow_paid_broadcast) {
    request.allow_paid_broadcast = true;
  }
  telegram::BotApiLane bulk = api->bulk();
  co_await bulk.send_message(std::move(request));
}

double per_second(std::uint64_t count, Clock::duration elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

}  // namespace

const char* to_string(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::delivered:
      return "delivered";
    case Outcome::blocked:
      return "blocked";
    case Outcome::failed:
      return "failed";
  }
  return "unknown";
}

SendFunction make_text_sender(telegram::BotApi& api, TextMessage message) {
  auto shared = std::make_shared<const TextMessage>(std::move(message));
  telegram::BotApi* api_pointer = &api;
  return [api_pointer, shared](std::int64_t chat_id) { return send_text(api_pointer, shared, chat_id); };
}

// ------------------------------------------------------------ sources ----

boost::asio::awaitable<std::optional<std::uint64_t>> RecipientSource::count() {
  co_return std::nullopt;
}

VectorRecipientSource::VectorRecipientSource(std::vector<std::int64_t> chat_ids) : chat_ids_(std::move(chat_ids)) {
  std::sort(chat_ids_.begin(), chat_ids_.end());
  chat_ids_.erase(std::unique(chat_ids_.begin(), chat_ids_.end()), chat_ids_.end());
}

boost::asio::awaitable<std::vector<std::int64_t>> VectorRecipientSource::next_page(std::optional<std::int64_t> after,
                                                                                   std::size_t limit) {
  auto first = after ? std::upper_bound(chat_ids_.begin(), chat_ids_.end(), *after) : chat_ids_.begin();
  const auto available = static_cast<std::size_t>(chat_ids_.end() - first);
  const auto take = static_cast<std::ptrdiff_t>(std::min(limit, available));
  co_return std::vector<std::int64_t>(first, first + take);
}

boost::asio::awaitable<std::optional<std::uint64_t>> VectorRecipientSource::count() {
  co_return chat_ids_.size();
}

// ------------------------------------------------- memory checkpoints ----

struct MemoryCheckpointStore::State {
  struct Broadcast {
    std::unordered_map<std::int64_t, std::size_t> index;
    std::vector<RecipientResult> results;
  };
  std::unordered_map<std::string, Broadcast> broadcasts;
};

MemoryCheckpointStore::MemoryCheckpointStore() : state_(std::make_unique<State>()) {}
MemoryCheckpointStore::~MemoryCheckpointStore() = default;

boost::asio::awaitable<std::vector<std::int64_t>> MemoryCheckpointStore::filter_pending(
    std::string broadcast_id, std::vector<std::int64_t> page) {
  const auto found = state_->broadcasts.find(broadcast_id);
  if (found == state_->broadcasts.end()) {
    co_return page;
  }
  const auto& index = found->second.index;
  std::erase_if(page, [&index](std::int64_t chat_id) { return index.contains(chat_id); });
  co_return page;
}

boost::asio::awaitable<void> MemoryCheckpointStore::record(std::string broadcast_id, RecipientResult result) {
  auto& broadcast = state_->broadcasts[broadcast_id];
  const auto [position, inserted] = broadcast.index.try_emplace(result.chat_id, broadcast.results.size());
  if (inserted) {
    broadcast.results.push_back(result);
  } else {
    broadcast.results[position->second] = result;
  }
  co_return;
}

boost::asio::awaitable<Progress> MemoryCheckpointStore::totals(std::string broadcast_id) {
  Progress totals;
  for (const RecipientResult& result : results(broadcast_id)) {
    switch (result.outcome) {
      case Outcome::delivered:
        ++totals.delivered;
        break;
      case Outcome::blocked:
        ++totals.blocked;
        break;
      case Outcome::failed:
        ++totals.failed;
        break;
    }
    if (result.migrated_to) {
      ++totals.migrated;
    }
  }
  co_return totals;
}

std::vector<RecipientResult> MemoryCheckpointStore::results(const std::string& broadcast_id) const {
  const auto found = state_->broadcasts.find(broadcast_id);
  if (found == state_->broadcasts.end()) {
    return {};
  }
  return found->second.results;
}

// ---------------------------------------------------------- broadcast ----

struct Broadcast::State {
  bool started = false;
  Clock::time_point started_at{};
  Clock::time_point finished_at{};
  bool finished = false;
  Progress prior{};
  std::optional<std::uint64_t> total{};
  std::uint64_t delivered = 0;
  std::uint64_t blocked = 0;
  std::uint64_t failed = 0;
  std::uint64_t migrated = 0;
  std::optional<std::int64_t> cursor{};
  bool source_exhausted = false;
  std::deque<std::int64_t> buffer{};
};

Broadcast::Broadcast(SendFunction send, RecipientSource& source, CheckpointStore& store, BroadcastOptions options,
                     BroadcastCallbacks callbacks)
    : send_(std::move(send)),
      source_(&source),
      store_(&store),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      state_(std::make_unique<State>()) {
  if (options_.id.empty()) {
    throw std::invalid_argument("broadcast: BroadcastOptions::id is empty; set a unique id per broadcast");
  }
  if (options_.concurrency == 0) {
    throw std::invalid_argument("broadcast " + options_.id + ": concurrency must be at least 1");
  }
  if (options_.page_size == 0) {
    throw std::invalid_argument("broadcast " + options_.id + ": page_size must be at least 1");
  }
  if (!send_) {
    throw std::invalid_argument("broadcast " + options_.id + ": the send function is empty");
  }
  if (options_.progress_interval <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("broadcast " + options_.id + ": progress_interval must be positive");
  }
}

Broadcast::~Broadcast() = default;

Progress Broadcast::progress() const {
  const State& state = *state_;
  Progress progress;
  progress.delivered = state.prior.delivered + state.delivered;
  progress.blocked = state.prior.blocked + state.blocked;
  progress.failed = state.prior.failed + state.failed;
  progress.migrated = state.prior.migrated + state.migrated;
  progress.resumed = state.prior.done();
  if (state.total) {
    const std::uint64_t done = progress.done();
    progress.pending = *state.total > done ? *state.total - done : 0;
  }
  if (state.started) {
    const Clock::time_point end = state.finished ? state.finished_at : Clock::now();
    const auto elapsed = end - state.started_at;
    progress.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed);
    progress.rate = per_second(state.delivered + state.blocked + state.failed, elapsed);
  }
  return progress;
}

boost::asio::awaitable<Report> Broadcast::run() {
  if (state_->started) {
    throw std::logic_error("broadcast " + options_.id + ": run() was already called");
  }
  state_->started = true;
  state_->started_at = Clock::now();

  std::string id = options_.id;
  state_->prior = co_await store_->totals(std::move(id));
  state_->total = co_await source_->count();
  logger()->info("broadcast started: broadcast={} recipients={} already_done={} concurrency={}", options_.id,
                 state_->total ? std::to_string(*state_->total) : std::string("unknown"), state_->prior.done(),
                 options_.concurrency);

  if (callbacks_.on_progress) {
    using boost::asio::experimental::awaitable_operators::operator||;
    auto sends = send_all();
    auto reports = report_progress_loop();
    co_await (std::move(sends) || std::move(reports));
  } else {
    co_await send_all();
  }

  state_->finished_at = Clock::now();
  state_->finished = true;
  Report report;
  report.totals = progress();

  // The store is the authority on outcomes: a record of an interrupted
  // earlier run may have committed after this run read its totals.
  std::string final_id = options_.id;
  const Progress stored = co_await store_->totals(std::move(final_id));
  report.totals.delivered = stored.delivered;
  report.totals.blocked = stored.blocked;
  report.totals.failed = stored.failed;
  report.totals.migrated = stored.migrated;
  if (state_->total) {
    const std::uint64_t done = report.totals.done();
    report.totals.pending = *state_->total > done ? *state_->total - done : 0;
  }
  report.duration = report.totals.elapsed;
  report.rate = report.totals.rate;
  logger()->info(
      "broadcast finished: broadcast={} delivered={} blocked={} failed={} migrated={} resumed={} "
      "duration_ms={} rate_per_s={:.1f}",
      options_.id, report.totals.delivered, report.totals.blocked, report.totals.failed, report.totals.migrated,
      report.totals.resumed, report.duration.count(), report.rate);
  co_return report;
}

boost::asio::awaitable<void> Broadcast::send_all() {
  auto next = [this]() { return next_recipient(); };
  auto send_one = [this](std::int64_t chat_id) { return send_to(chat_id); };
  co_await runtime::for_each_bounded(std::move(next), options_.concurrency, std::move(send_one));
}

boost::asio::awaitable<void> Broadcast::report_progress_loop() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  // Ends only by cancellation, when send_all() finishes.
  for (;;) {
    timer.expires_after(options_.progress_interval);
    co_await timer.async_wait(boost::asio::use_awaitable);
    Progress current = progress();
    co_await callbacks_.on_progress(current);
  }
}

boost::asio::awaitable<std::optional<std::int64_t>> Broadcast::next_recipient() {
  State& state = *state_;
  while (state.buffer.empty()) {
    if (state.source_exhausted) {
      co_return std::nullopt;
    }
    std::vector<std::int64_t> page = co_await source_->next_page(state.cursor, options_.page_size);
    if (page.empty()) {
      state.source_exhausted = true;
      co_return std::nullopt;
    }

    // A page out of order would make keyset pagination loop or skip
    // recipients, so it stops the broadcast.
    const bool ascending = std::adjacent_find(page.begin(), page.end(), std::greater_equal<>()) == page.end();
    if (!ascending || (state.cursor && page.front() <= *state.cursor)) {
      throw std::runtime_error("broadcast " + options_.id + ": the recipient source returned a page that is not " +
                               "ascending after chat id " +
                               (state.cursor ? std::to_string(*state.cursor) : std::string("(start)")) +
                               "; order the page query by chat id");
    }
    state.cursor = page.back();
    if (page.size() < options_.page_size) {
      state.source_exhausted = true;
    }

    std::string id = options_.id;
    std::vector<std::int64_t> pending = co_await store_->filter_pending(std::move(id), std::move(page));
    state.buffer.assign(pending.begin(), pending.end());
  }
  const std::int64_t chat_id = state.buffer.front();
  state.buffer.pop_front();
  co_return chat_id;
}

boost::asio::awaitable<void> Broadcast::send_to(std::int64_t chat_id) {
  RecipientResult result{.chat_id = chat_id, .outcome = Outcome::delivered, .migrated_to = std::nullopt};
  SendFailure failure = co_await try_send(send_, chat_id);

  if (failure.migrate_to && options_.follow_migrations) {
    const std::int64_t new_chat_id = *failure.migrate_to;
    logger()->info("broadcast chat migrated: broadcast={} chat_id={} new_chat_id={}", options_.id, chat_id,
                   new_chat_id);
    if (callbacks_.on_migrated) {
      co_await callbacks_.on_migrated(chat_id, new_chat_id);
    }
    result.migrated_to = new_chat_id;
    failure = co_await try_send(send_, new_chat_id);
    // A chat migrates once; a second migration reply is an error.
    if (failure.migrate_to) {
      failure.outcome = Outcome::failed;
    }
  }
  result.outcome = failure.outcome;

  if (result.outcome == Outcome::blocked && callbacks_.on_blocked) {
    co_await callbacks_.on_blocked(result.migrated_to.value_or(chat_id));
  }
  std::string id = options_.id;
  co_await store_->record(std::move(id), result);

  State& state = *state_;
  switch (result.outcome) {
    case Outcome::delivered:
      ++state.delivered;
      if (result.migrated_to) {
        ++state.migrated;
      }
      break;
    case Outcome::blocked:
      ++state.blocked;
      break;
    case Outcome::failed:
      ++state.failed;
      if (state.failed <= kFailuresLoggedInFull || state.failed % kFailureLogEvery == 0) {
        const std::uint64_t suppressed =
            state.failed <= kFailuresLoggedInFull ? 0 : kFailureLogEvery - 1;
        logger()->warn("broadcast send failed: broadcast={} chat_id={} failed_total={} suppressed={} error={}",
                       options_.id, chat_id, state.failed, suppressed, failure.detail);
      }
      break;
  }
}

}  // namespace sluice::broadcast
