#pragma once

// Outgoing flood control for Bot API calls.
//
// FloodController is the pure state machine: time is passed in, nothing
// blocks, and tests drive it with a simulated clock. FloodGate wraps it for
// coroutines on one executor.
//
// Which calls pass which budgets (see `classify_flood`):
//
//   | class            | methods                                        | budgets                     |
//   | ---------------- | ---------------------------------------------- | --------------------------- |
//   | message          | send*, forward*, copy* (not the ones below)    | global (or paid), chat, group |
//   | edit             | edit*, stopPoll, stopMessageLiveLocation       | chat, group                 |
//   | callback_answer  | answerCallbackQuery                            | callback_answers            |
//   | other            | everything else (getMe, getChat, deleteMessage, sendChatAction, drafts ...) | none |
//   | bypass           | getUpdates                                     | none, and no pause either   |
//
// Telegram's published limits are about sending messages: about 1 message
// per second per chat, 20 per minute per group, 30 per second overall for
// bulk notifications, 1000 per second with allow_paid_broadcast
// (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
// Edits count against the chat and group budgets because groups limit
// edits too. Every class except `bypass` obeys the pauses that 429 replies
// start.
//
// Groups, supergroups and channels are the chats with a negative id or an
// `@username` chat_id (only those can be addressed by username).

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::telegram {

/// Priority class of a call. Interactive calls (replies to users) are
/// offered every free budget before bulk calls (broadcasts): a bulk call
/// waits while an interactive call is queued for the same budget.
enum class Lane : std::uint8_t { interactive, bulk };

/// Flood-control treatment of a method; see the table at the top of this
/// header.
enum class FloodClass : std::uint8_t { message, edit, callback_answer, other, bypass };

/// Returns the flood class of a Bot API method name ("sendMessage" ...).
FloodClass classify_flood(std::string_view method);

/// A steady rate with bursts (GCRA): on average `limit` calls per `period`,
/// and up to `burst` calls back to back after an idle stretch.
struct RateLimit {
  /// False: this budget is not checked at all.
  bool enabled = true;
  /// Calls per period. Must be at least 1 when enabled.
  std::uint32_t limit = 1;
  std::chrono::milliseconds period = std::chrono::seconds(1);
  /// Calls allowed back to back; 1 means evenly spaced. At least 1.
  std::uint32_t burst = 1;
};

struct FloodOptions {
  /// False: FloodGate lets every call through at once and 429 replies pause
  /// nothing (they are still retried by the retry policy).
  bool enabled = true;
  /// Messages across all chats. Default: 30 per second, burst 5.
  RateLimit global{.limit = 30, .period = std::chrono::seconds(1), .burst = 5};
  /// Messages and edits per chat (private chats and groups). Default: 1 per
  /// 1.05 s, burst 3. Telegram allows about 1 per second after a short
  /// burst. The 5 % margin lets a call granted at the edge of the budget
  /// arrive a little early without a 429, which would pause the chat for
  /// whole seconds.
  RateLimit per_chat{.limit = 1, .period = std::chrono::milliseconds(1050), .burst = 3};
  /// Messages and edits per group, supergroup or channel, on top of
  /// per_chat. Default: 20 per minute, burst 3, so at most 22 in the first
  /// minute after an idle stretch and 20 per minute after that.
  RateLimit per_group{.limit = 20, .period = std::chrono::minutes(1), .burst = 3};
  /// Messages sent with allow_paid_broadcast=true; they use this budget
  /// instead of `global`. Default: 1000 per second, burst 50.
  RateLimit paid_broadcast{.limit = 1000, .period = std::chrono::seconds(1), .burst = 50};
  /// answerCallbackQuery calls. Telegram publishes no number; the default
  /// (30 per second, burst 30) only stops a runaway loop.
  RateLimit callback_answers{.limit = 30, .period = std::chrono::seconds(1), .burst = 30};
  /// True: a 429 on a call with a chat pauses every call, not only that
  /// chat. A 429 on a call without a chat always pauses every call.
  bool pause_all_on_chat_429 = false;
};

/// Chat identity as the Bot API accepts it: a numeric id or "@username".
using ChatKey = std::variant<std::int64_t, std::string>;

/// True for groups, supergroups and channels.
bool is_group_chat(const ChatKey& chat);

/// Facts about one call that flood control uses.
struct FloodRequest {
  FloodClass kind = FloodClass::other;
  std::optional<ChatKey> chat{};
  Lane lane = Lane::interactive;
  /// allow_paid_broadcast was set: the message uses the paid budget.
  bool paid_broadcast = false;
};

/// Pure flood-control state machine. Not thread-safe; time is passed in.
///
/// Use: `submit` a request to get a ticket, then `poll` grants tickets in
/// priority order as budgets allow; call `poll` again at `next_wakeup`.
/// Grant order: interactive tickets in arrival order, then bulk tickets in
/// arrival order. Tickets whose budgets are spent are skipped, and tickets
/// of one chat and class keep their arrival order within a lane.
///
/// Memory: one entry per waiting ticket plus one per chat whose budget is
/// not yet full again or that is paused; idle chat entries are removed by a
/// sweep at most once per second.
class FloodController {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Ticket = std::uint64_t;

  /// Throws std::invalid_argument for an enabled RateLimit with limit 0,
  /// burst 0 or a non-positive period.
  explicit FloodController(FloodOptions options);

  /// Queues `request` and returns its ticket. A `bypass` request must not
  /// be submitted.
  Ticket submit(FloodRequest request, TimePoint now);

  /// Grants every queued ticket whose budgets allow it at `now`, takes the
  /// budgets, and appends the tickets to `granted` in grant order.
  void poll(TimePoint now, std::vector<Ticket>& granted);

  /// Earliest time a queued ticket may be granted, as computed by the last
  /// `poll`; nullopt when that poll left nothing queued. Call `poll` after
  /// each `submit` to bring it up to date.
  [[nodiscard]] std::optional<TimePoint> next_wakeup() const { return next_wakeup_; }

  /// Removes a queued ticket (its caller gave up). Returns false when the
  /// ticket is not queued (already granted or unknown).
  bool cancel(Ticket ticket);

  /// Records a 429 reply to `request`: pauses its scope (its chat, or every
  /// call; see FloodOptions::pause_all_on_chat_429) until now + retry_after.
  /// A pause only ever grows: a shorter retry_after does not end it early.
  /// After the pause the scope's budget starts empty, so waiting calls do not
  /// all go at once.
  void pause(const FloodRequest& request, std::chrono::seconds retry_after, TimePoint now);

  /// End of the pause that applies to `request` at `now`, or nullopt.
  [[nodiscard]] std::optional<TimePoint> paused_until(const FloodRequest& request,
                                                      TimePoint now) const;

  [[nodiscard]] std::size_t queued() const { return tickets_.size(); }
  [[nodiscard]] std::size_t tracked_chats() const { return chats_.size(); }
  [[nodiscard]] const FloodOptions& options() const { return options_; }

 private:
  // Theoretical arrival time of a GCRA cell: the budget is full when
  // tat <= now.
  struct Cell {
    TimePoint tat{};
  };

  struct ChatState {
    Cell chat{};
    Cell group{};
    TimePoint paused_until{};
  };

  struct ChatKeyHash {
    std::size_t operator()(const ChatKey& key) const;
  };

  // Returns when all of the ticket's budgets and pauses allow it.
  [[nodiscard]] TimePoint ready_at(const FloodRequest& request, const ChatState* chat) const;
  void take(const FloodRequest& request, ChatState* chat, TimePoint now);
  ChatState* find_chat(const FloodRequest& request);
  [[nodiscard]] const ChatState* find_chat(const FloodRequest& request) const;
  void sweep(TimePoint now);

  FloodOptions options_;
  Ticket next_ticket_ = 1;
  std::unordered_map<Ticket, FloodRequest> tickets_;
  std::deque<Ticket> lanes_[2];
  std::unordered_map<ChatKey, ChatState, ChatKeyHash> chats_;
  Cell global_;
  Cell paid_;
  Cell callbacks_;
  TimePoint global_paused_until_{};
  std::optional<TimePoint> next_wakeup_;
  TimePoint last_sweep_{};
};

/// FloodController for coroutines on one executor.
///
/// Thread-safety: all member functions, and the coroutines they return,
/// must run on the executor passed to the constructor.
class FloodGate {
 public:
  FloodGate(boost::asio::any_io_executor executor, FloodOptions options);
  /// Wakes every waiting call with operation_aborted.
  ~FloodGate();
  FloodGate(const FloodGate&) = delete;
  FloodGate& operator=(const FloodGate&) = delete;

  /// Waits until `request` may be sent and takes its budgets.
  ///
  /// Completes at once for `bypass` requests and when flood control is
  /// disabled. Ordering: as FloodController. Cancellation: a cancelled wait
  /// takes no budget, leaves the queue and throws
  /// boost::system::system_error(operation_aborted); a wait cancelled after
  /// its grant completes normally. Errors: operation_aborted also when the
  /// gate is destroyed. `request` is copied.
  boost::asio::awaitable<void> wait(FloodRequest request);

  /// Records a 429 reply (see FloodController::pause) and re-plans wake-ups.
  void pause(const FloodRequest& request, std::chrono::seconds retry_after);

  [[nodiscard]] std::optional<FloodController::TimePoint> paused_until(
      const FloodRequest& request) const;

  [[nodiscard]] std::size_t queued() const;
  [[nodiscard]] std::size_t tracked_chats() const;
  [[nodiscard]] const FloodOptions& options() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace sluice::telegram
