#include <sluice/telegram/flood_control.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <fmt/format.h>

namespace sluice::telegram {
namespace {

namespace asio = boost::asio;
using Clock = FloodController::Clock;
using TimePoint = FloodController::TimePoint;

// Idle chat entries are swept at most this often, so a sweep's cost (one
// pass over the map) is spread over many calls.
constexpr auto kSweepInterval = std::chrono::seconds(1);

// Methods outside the send/forward/copy/edit prefixes that still count as
// messages or edits, and send* methods that do not post a message.
constexpr std::array<std::string_view, 2> kEditMethods = {"stopPoll", "stopMessageLiveLocation"};
constexpr std::array<std::string_view, 3> kSendMethodsWithoutMessage = {
    "sendChatAction", "sendMessageDraft", "sendRichMessageDraft"};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Time between two calls at the steady rate, rounded up so that rounding
// never lets a call through early.
Clock::duration interval(const RateLimit& rate) {
  const auto period = std::chrono::duration_cast<Clock::duration>(rate.period);
  return (period + Clock::duration(rate.limit - 1)) / rate.limit;
}

// Burst tolerance of a GCRA cell: how far tat may run ahead of now.
Clock::duration tolerance(const RateLimit& rate) { return interval(rate) * (rate.burst - 1); }

void validate(const RateLimit& rate, std::string_view name) {
  if (!rate.enabled) {
    return;
  }
  if (rate.limit == 0 || rate.burst == 0 || rate.period <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument(fmt::format(
        "FloodOptions::{} is invalid: limit={} period_ms={} burst={}; limit and burst must be "
        "at least 1 and period positive, or set enabled=false",
        name, rate.limit, rate.period.count(), rate.burst));
  }
}

bool counts_as_chat_traffic(FloodClass kind) {
  return kind == FloodClass::message || kind == FloodClass::edit;
}

}  // namespace

FloodClass classify_flood(std::string_view method) {
  if (method == "getUpdates") {
    return FloodClass::bypass;
  }
  if (method == "answerCallbackQuery") {
    return FloodClass::callback_answer;
  }
  if (contains(kSendMethodsWithoutMessage, method)) {
    return FloodClass::other;
  }
  if (method.starts_with("send") || method.starts_with("forward") ||
      method.starts_with("copy")) {
    return FloodClass::message;
  }
  if (method.starts_with("edit") || contains(kEditMethods, method)) {
    return FloodClass::edit;
  }
  return FloodClass::other;
}

bool is_group_chat(const ChatKey& chat) {
  if (const auto* id = std::get_if<std::int64_t>(&chat)) {
    return *id < 0;
  }
  return true;
}

std::size_t FloodController::ChatKeyHash::operator()(const ChatKey& key) const {
  return std::hash<ChatKey>{}(key);
}

FloodController::FloodController(FloodOptions options) : options_(std::move(options)) {
  validate(options_.global, "global");
  validate(options_.per_chat, "per_chat");
  validate(options_.per_group, "per_group");
  validate(options_.paid_broadcast, "paid_broadcast");
  validate(options_.callback_answers, "callback_answers");
}

FloodController::Ticket FloodController::submit(FloodRequest request, TimePoint now) {
  const Ticket ticket = next_ticket_++;
  lanes_[static_cast<std::size_t>(request.lane)].push_back(ticket);
  tickets_.emplace(ticket, std::move(request));
  if (last_sweep_ == TimePoint{}) {
    last_sweep_ = now;
  }
  return ticket;
}

FloodController::ChatState* FloodController::find_chat(const FloodRequest& request) {
  if (!request.chat) {
    return nullptr;
  }
  auto it = chats_.find(*request.chat);
  return it == chats_.end() ? nullptr : &it->second;
}

const FloodController::ChatState* FloodController::find_chat(const FloodRequest& request) const {
  if (!request.chat) {
    return nullptr;
  }
  auto it = chats_.find(*request.chat);
  return it == chats_.end() ? nullptr : &it->second;
}

TimePoint FloodController::ready_at(const FloodRequest& request, const ChatState* chat) const {
  auto cell_ready = [](const Cell& cell, const RateLimit& rate) {
    return rate.enabled ? cell.tat - tolerance(rate) : TimePoint::min();
  };

  TimePoint ready = global_paused_until_;
  if (chat != nullptr) {
    ready = std::max(ready, chat->paused_until);
  }

  switch (request.kind) {
    case FloodClass::message:
      ready = std::max(ready, request.paid_broadcast
                                  ? cell_ready(paid_, options_.paid_broadcast)
                                  : cell_ready(global_, options_.global));
      break;
    case FloodClass::callback_answer:
      ready = std::max(ready, cell_ready(callbacks_, options_.callback_answers));
      break;
    case FloodClass::edit:
    case FloodClass::other:
    case FloodClass::bypass:
      break;
  }

  if (chat != nullptr && counts_as_chat_traffic(request.kind)) {
    ready = std::max(ready, cell_ready(chat->chat, options_.per_chat));
    if (is_group_chat(*request.chat)) {
      ready = std::max(ready, cell_ready(chat->group, options_.per_group));
    }
  }
  return ready;
}

void FloodController::take(const FloodRequest& request, ChatState* chat, TimePoint now) {
  auto take_cell = [now](Cell& cell, const RateLimit& rate) {
    if (rate.enabled) {
      cell.tat = std::max(cell.tat, now) + interval(rate);
    }
  };

  if (request.kind == FloodClass::message) {
    take_cell(request.paid_broadcast ? paid_ : global_,
              request.paid_broadcast ? options_.paid_broadcast : options_.global);
  } else if (request.kind == FloodClass::callback_answer) {
    take_cell(callbacks_, options_.callback_answers);
  }

  if (!request.chat || !counts_as_chat_traffic(request.kind)) {
    return;
  }
  if (chat == nullptr) {
    chat = &chats_[*request.chat];
  }
  take_cell(chat->chat, options_.per_chat);
  if (is_group_chat(*request.chat)) {
    take_cell(chat->group, options_.per_group);
  }
}

void FloodController::poll(TimePoint now, std::vector<Ticket>& granted) {
  sweep(now);
  next_wakeup_.reset();
  if (tickets_.empty()) {
    lanes_[0].clear();
    lanes_[1].clear();
    return;
  }

  // A pause of everything holds every queued ticket; skip the scan.
  if (global_paused_until_ > now) {
    next_wakeup_ = global_paused_until_;
    return;
  }

  // NOTE: the scan visits every queued ticket, so a poll costs O(queued).
  // Callers bound the queue by bounding their own concurrency.
  for (auto& lane : lanes_) {
    std::deque<Ticket> still_queued;
    for (const Ticket ticket : lane) {
      auto it = tickets_.find(ticket);
      if (it == tickets_.end()) {
        continue;  // cancelled
      }
      ChatState* chat = find_chat(it->second);
      const TimePoint ready = ready_at(it->second, chat);
      if (ready > now) {
        next_wakeup_ = next_wakeup_ ? std::min(*next_wakeup_, ready) : ready;
        still_queued.push_back(ticket);
        continue;
      }
      take(it->second, chat, now);
      granted.push_back(ticket);
      tickets_.erase(it);
    }
    lane = std::move(still_queued);
  }
}

bool FloodController::cancel(Ticket ticket) {
  // The ticket id stays in its lane until the next poll skips it.
  return tickets_.erase(ticket) > 0;
}

void FloodController::pause(const FloodRequest& request, std::chrono::seconds retry_after,
                            TimePoint now) {
  if (request.kind == FloodClass::bypass) {
    return;
  }
  const TimePoint until = now + retry_after;

  // Starting each budget empty at `until` spaces out the calls that waited.
  auto drain_cell = [until](Cell& cell, const RateLimit& rate) {
    if (rate.enabled) {
      cell.tat = std::max(cell.tat, until + tolerance(rate));
    }
  };

  if (request.chat && !options_.pause_all_on_chat_429) {
    ChatState& chat = chats_[*request.chat];
    chat.paused_until = std::max(chat.paused_until, until);
    drain_cell(chat.chat, options_.per_chat);
    if (is_group_chat(*request.chat)) {
      drain_cell(chat.group, options_.per_group);
    }
    return;
  }

  global_paused_until_ = std::max(global_paused_until_, until);
  drain_cell(global_, options_.global);
  drain_cell(paid_, options_.paid_broadcast);
}

std::optional<TimePoint> FloodController::paused_until(const FloodRequest& request,
                                                       TimePoint now) const {
  if (request.kind == FloodClass::bypass) {
    return std::nullopt;
  }
  TimePoint until = global_paused_until_;
  if (const ChatState* chat = find_chat(request)) {
    until = std::max(until, chat->paused_until);
  }
  if (until <= now) {
    return std::nullopt;
  }
  return until;
}

void FloodController::sweep(TimePoint now) {
  if (now - last_sweep_ < kSweepInterval) {
    return;
  }
  last_sweep_ = now;
  std::erase_if(chats_, [now](const auto& entry) {
    const ChatState& chat = entry.second;
    return chat.paused_until <= now && chat.chat.tat <= now && chat.group.tat <= now;
  });
}

// ---------------------------------------------------------------------------
// FloodGate

struct FloodGate::State : std::enable_shared_from_this<FloodGate::State> {
  struct Waiter {
    explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {
      timer.expires_at(TimePoint::max());
    }
    asio::steady_timer timer;
    bool granted = false;
  };

  State(asio::any_io_executor executor_in, FloodOptions options)
      : executor(std::move(executor_in)),
        controller(std::move(options)),
        wake_timer(executor) {}

  // Grants what the budgets allow now, wakes those waiters, and re-arms the
  // wake-up timer. Returns true when `own` was among the granted tickets.
  bool poll_and_wake(TimePoint now, std::optional<FloodController::Ticket> own = {}) {
    scratch.clear();
    controller.poll(now, scratch);
    bool own_granted = false;
    for (const auto ticket : scratch) {
      if (ticket == own) {
        own_granted = true;
        continue;
      }
      auto it = waiters.find(ticket);
      if (it != waiters.end()) {
        it->second->granted = true;
        it->second->timer.cancel();
        waiters.erase(it);
      }
    }
    rearm();
    return own_granted;
  }

  void rearm() {
    if (closed) {
      return;
    }
    const auto next = controller.next_wakeup();
    if (next == armed_for) {
      return;
    }
    armed_for = next;
    if (!next) {
      wake_timer.cancel();
      return;
    }
    wake_timer.expires_at(*next);
    wake_timer.async_wait([weak = weak_from_this(), at = *next](boost::system::error_code ec) {
      if (ec == asio::error::operation_aborted) {
        return;
      }
      auto self = weak.lock();
      if (!self || self->closed || self->armed_for != at) {
        return;
      }
      self->armed_for.reset();
      self->poll_and_wake(Clock::now());
    });
  }

  void close() {
    closed = true;
    wake_timer.cancel();
    for (auto& [ticket, waiter] : waiters) {
      waiter->timer.cancel();
    }
    waiters.clear();
  }

  asio::any_io_executor executor;
  FloodController controller;
  asio::steady_timer wake_timer;
  std::optional<TimePoint> armed_for;
  std::unordered_map<FloodController::Ticket, std::shared_ptr<Waiter>> waiters;
  std::vector<FloodController::Ticket> scratch;
  bool closed = false;
};

FloodGate::FloodGate(asio::any_io_executor executor, FloodOptions options)
    : state_(std::make_shared<State>(std::move(executor), std::move(options))) {}

FloodGate::~FloodGate() { state_->close(); }

asio::awaitable<void> FloodGate::wait(FloodRequest request) {
  // The coroutine keeps the state alive, so the gate may be destroyed while
  // it waits.
  const std::shared_ptr<State> state = state_;
  if (!state->controller.options().enabled || request.kind == FloodClass::bypass) {
    co_return;
  }
  if (state->closed) {
    throw boost::system::system_error(asio::error::operation_aborted);
  }

  const auto ticket = state->controller.submit(std::move(request), Clock::now());
  if (state->poll_and_wake(Clock::now(), ticket)) {
    co_return;
  }

  auto waiter = std::make_shared<State::Waiter>(state->executor);
  state->waiters.emplace(ticket, waiter);
  co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (waiter->granted) {
    co_return;
  }

  state->waiters.erase(ticket);
  state->controller.cancel(ticket);
  state->rearm();
  throw boost::system::system_error(asio::error::operation_aborted);
}

void FloodGate::pause(const FloodRequest& request, std::chrono::seconds retry_after) {
  if (!state_->controller.options().enabled) {
    return;
  }
  state_->controller.pause(request, retry_after, Clock::now());
  state_->poll_and_wake(Clock::now());
}

std::optional<TimePoint> FloodGate::paused_until(const FloodRequest& request) const {
  return state_->controller.paused_until(request, Clock::now());
}

std::size_t FloodGate::queued() const { return state_->controller.queued(); }

std::size_t FloodGate::tracked_chats() const { return state_->controller.tracked_chats(); }

const FloodOptions& FloodGate::options() const { return state_->controller.options(); }

}  // namespace sluice::telegram
