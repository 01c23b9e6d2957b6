#include <sluice/telegram/flood_control.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::telegram {
namespace {

using namespace std::chrono_literals;
using TimePoint = FloodController::TimePoint;
using Ticket = FloodController::Ticket;

// Arbitrary start of simulated time, far from the clock's epoch.
const TimePoint kStart = TimePoint{} + 1000h;

// Budgets switched off, for tests that look at one budget at a time.
FloodOptions no_budgets() {
  FloodOptions options;
  options.global.enabled = false;
  options.per_chat.enabled = false;
  options.per_group.enabled = false;
  options.paid_broadcast.enabled = false;
  options.callback_answers.enabled = false;
  return options;
}

FloodRequest message_to(std::int64_t chat, Lane lane = Lane::interactive) {
  return {.kind = FloodClass::message, .chat = ChatKey{chat}, .lane = lane};
}

// Drives a FloodController on a simulated clock and records grant times.
class Simulation {
 public:
  explicit Simulation(FloodOptions options) : controller_(std::move(options)) {}

  Ticket submit(FloodRequest request) {
    const Ticket ticket = controller_.submit(std::move(request), now_);
    poll();
    return ticket;
  }

  void poll() {
    std::vector<Ticket> granted;
    controller_.poll(now_, granted);
    for (const Ticket ticket : granted) {
      grants_.emplace(ticket, now_);
      order_.push_back(ticket);
    }
  }

  // Advances the clock from wake-up to wake-up until `deadline`.
  void run_until(TimePoint deadline) {
    while (auto next = controller_.next_wakeup()) {
      if (*next > deadline) {
        break;
      }
      now_ = std::max(now_, *next);
      poll();
    }
    now_ = std::max(now_, deadline);
    poll();
  }

  void advance(std::chrono::nanoseconds by) { run_until(now_ + by); }

  [[nodiscard]] std::optional<TimePoint> granted_at(Ticket ticket) const {
    auto it = grants_.find(ticket);
    return it == grants_.end() ? std::nullopt : std::optional(it->second);
  }

  // Largest number of grants inside any window of `width` that starts at a
  // grant.
  [[nodiscard]] std::size_t max_in_window(std::chrono::nanoseconds width) const {
    std::vector<TimePoint> times;
    for (const auto& [ticket, at] : grants_) {
      times.push_back(at);
    }
    std::sort(times.begin(), times.end());
    std::size_t best = 0;
    for (std::size_t i = 0; i < times.size(); ++i) {
      auto end = std::lower_bound(times.begin() + static_cast<std::ptrdiff_t>(i), times.end(),
                                  times[i] + width);
      best = std::max(best, static_cast<std::size_t>(end - times.begin()) - i);
    }
    return best;
  }

  FloodController& controller() { return controller_; }
  [[nodiscard]] TimePoint now() const { return now_; }
  [[nodiscard]] const std::vector<Ticket>& order() const { return order_; }
  [[nodiscard]] std::size_t granted_count() const { return grants_.size(); }

 private:
  FloodController controller_;
  TimePoint now_ = kStart;
  std::map<Ticket, TimePoint> grants_;
  std::vector<Ticket> order_;
};

TEST(FloodClassify, MethodTable) {
  EXPECT_EQ(classify_flood("getUpdates"), FloodClass::bypass);
  EXPECT_EQ(classify_flood("sendMessage"), FloodClass::message);
  EXPECT_EQ(classify_flood("sendPhoto"), FloodClass::message);
  EXPECT_EQ(classify_flood("sendMediaGroup"), FloodClass::message);
  EXPECT_EQ(classify_flood("forwardMessage"), FloodClass::message);
  EXPECT_EQ(classify_flood("copyMessages"), FloodClass::message);
  EXPECT_EQ(classify_flood("editMessageText"), FloodClass::edit);
  EXPECT_EQ(classify_flood("stopPoll"), FloodClass::edit);
  EXPECT_EQ(classify_flood("answerCallbackQuery"), FloodClass::callback_answer);
  EXPECT_EQ(classify_flood("sendChatAction"), FloodClass::other);
  EXPECT_EQ(classify_flood("sendMessageDraft"), FloodClass::other);
  EXPECT_EQ(classify_flood("getMe"), FloodClass::other);
  EXPECT_EQ(classify_flood("deleteMessage"), FloodClass::other);
  EXPECT_EQ(classify_flood("getChat"), FloodClass::other);
}

TEST(FloodClassify, GroupChats) {
  EXPECT_FALSE(is_group_chat(ChatKey{std::int64_t{42}}));
  EXPECT_TRUE(is_group_chat(ChatKey{std::int64_t{-42}}));
  EXPECT_TRUE(is_group_chat(ChatKey{std::int64_t{-1001000000001}}));
  EXPECT_TRUE(is_group_chat(ChatKey{std::string("@example_channel")}));
}

TEST(FloodController, RejectsInvalidRate) {
  FloodOptions zero_limit;
  zero_limit.global.limit = 0;
  EXPECT_THROW(FloodController{zero_limit}, std::invalid_argument);

  FloodOptions zero_burst;
  zero_burst.per_chat.burst = 0;
  EXPECT_THROW(FloodController{zero_burst}, std::invalid_argument);

  FloodOptions disabled = zero_limit;
  disabled.global.enabled = false;
  EXPECT_NO_THROW(FloodController{disabled});
}

TEST(FloodController, GlobalRateHolds) {
  FloodOptions options = no_budgets();
  options.global = {.limit = 30, .period = 1s, .burst = 5};
  Simulation sim(options);

  std::vector<Ticket> tickets;
  for (std::int64_t chat = 1; chat <= 300; ++chat) {
    tickets.push_back(sim.submit(message_to(chat)));
  }
  sim.run_until(kStart + 20s);

  EXPECT_EQ(sim.granted_count(), 300U);
  // GCRA with burst 5: at most 5 + 30 - 1 in any one second.
  EXPECT_LE(sim.max_in_window(1s), 34U);
  // Steady state: 30 per second over a 5 s window, give or take one.
  EXPECT_LE(sim.max_in_window(5s), 5U + 150U);
  const auto last = sim.granted_at(tickets.back());
  ASSERT_TRUE(last.has_value());
  // The 300th goes (300 - 5) intervals of 1/30 s after the start.
  EXPECT_GE(*last - kStart, 9800ms);
  EXPECT_LE(*last - kStart, 9900ms);
}

TEST(FloodController, PerChatRateHolds) {
  FloodOptions options = no_budgets();
  options.per_chat = {.limit = 1, .period = 1s, .burst = 3};
  Simulation sim(options);

  std::vector<Ticket> tickets;
  for (int i = 0; i < 10; ++i) {
    tickets.push_back(sim.submit(message_to(42)));
  }
  sim.run_until(kStart + 30s);

  ASSERT_EQ(sim.granted_count(), 10U);
  // Three at once, then one per second.
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(*sim.granted_at(tickets[i]), kStart) << "ticket " << i;
  }
  for (std::size_t i = 3; i < tickets.size(); ++i) {
    EXPECT_EQ(*sim.granted_at(tickets[i]) - kStart, std::chrono::seconds(i - 2)) << "ticket " << i;
  }
  // Grants of one chat keep their submission order.
  EXPECT_EQ(sim.order(), tickets);
}

TEST(FloodController, PerChatRateLeavesOtherChatsAlone) {
  FloodOptions options = no_budgets();
  options.per_chat = {.limit = 1, .period = 1s, .burst = 1};
  Simulation sim(options);

  sim.submit(message_to(1));
  const Ticket second_to_one = sim.submit(message_to(1));
  const Ticket first_to_two = sim.submit(message_to(2));

  EXPECT_FALSE(sim.granted_at(second_to_one).has_value());
  ASSERT_TRUE(sim.granted_at(first_to_two).has_value());
  EXPECT_EQ(*sim.granted_at(first_to_two), kStart);
}

TEST(FloodController, PerGroupRateHolds) {
  FloodOptions options = no_budgets();
  options.per_chat = {.limit = 1, .period = 1s, .burst = 3};
  options.per_group = {.limit = 20, .period = 60s, .burst = 3};
  Simulation sim(options);

  for (int i = 0; i < 60; ++i) {
    sim.submit(message_to(-1001000000001));
  }
  sim.run_until(kStart + 300s);

  EXPECT_EQ(sim.granted_count(), 60U);
  // 3 at once, then one per 3 s: at most 22 in any minute.
  EXPECT_LE(sim.max_in_window(60s), 22U);
  EXPECT_LE(sim.max_in_window(120s), 42U);
}

TEST(FloodController, ChannelUsernameCountsAsGroup) {
  FloodOptions options = no_budgets();
  options.per_group = {.limit = 20, .period = 60s, .burst = 1};
  Simulation sim(options);

  const FloodRequest request{.kind = FloodClass::message, .chat = ChatKey{"@example_channel"}};
  sim.submit(request);
  const Ticket second = sim.submit(request);
  sim.advance(2s);
  EXPECT_FALSE(sim.granted_at(second).has_value());
  sim.advance(1s);
  ASSERT_TRUE(sim.granted_at(second).has_value());
  EXPECT_EQ(*sim.granted_at(second) - kStart, 3s);
}

TEST(FloodController, PaidBroadcastUsesOwnBudget) {
  FloodOptions options = no_budgets();
  options.global = {.limit = 1, .period = 1s, .burst = 1};
  options.paid_broadcast = {.limit = 1000, .period = 1s, .burst = 10};
  Simulation sim(options);

  sim.submit(message_to(1));
  const Ticket unpaid = sim.submit(message_to(2));
  FloodRequest paid = message_to(3);
  paid.paid_broadcast = true;
  const Ticket paid_ticket = sim.submit(paid);

  EXPECT_FALSE(sim.granted_at(unpaid).has_value());
  ASSERT_TRUE(sim.granted_at(paid_ticket).has_value());
  EXPECT_EQ(*sim.granted_at(paid_ticket), kStart);
}

TEST(FloodController, EditsSkipGlobalBudget) {
  FloodOptions options = no_budgets();
  options.global = {.limit = 1, .period = 1s, .burst = 1};
  options.per_chat = {.limit = 1, .period = 1s, .burst = 1};
  Simulation sim(options);

  sim.submit(message_to(1));
  const Ticket edit_other_chat =
      sim.submit({.kind = FloodClass::edit, .chat = ChatKey{std::int64_t{2}}});
  const Ticket edit_same_chat =
      sim.submit({.kind = FloodClass::edit, .chat = ChatKey{std::int64_t{1}}});

  EXPECT_EQ(sim.granted_at(edit_other_chat), std::optional(kStart));
  EXPECT_FALSE(sim.granted_at(edit_same_chat).has_value());
}

TEST(FloodController, CallbackAnswersHaveOwnBudget) {
  FloodOptions options = no_budgets();
  options.global = {.limit = 1, .period = 1s, .burst = 1};
  options.callback_answers = {.limit = 2, .period = 1s, .burst = 1};
  Simulation sim(options);

  sim.submit(message_to(1));
  const Ticket first = sim.submit({.kind = FloodClass::callback_answer});
  const Ticket second = sim.submit({.kind = FloodClass::callback_answer});

  EXPECT_EQ(sim.granted_at(first), std::optional(kStart));
  EXPECT_FALSE(sim.granted_at(second).has_value());
  sim.advance(500ms);
  EXPECT_EQ(sim.granted_at(second), std::optional(kStart + 500ms));
}

TEST(FloodController, OtherMethodsHaveNoRate) {
  FloodOptions options;
  Simulation sim(options);
  for (int i = 0; i < 100; ++i) {
    sim.submit({.kind = FloodClass::other, .chat = ChatKey{std::int64_t{7}}});
  }
  EXPECT_EQ(sim.granted_count(), 100U);
}

TEST(FloodController, ChatPauseHoldsOnlyThatChat) {
  Simulation sim(no_budgets());
  sim.controller().pause(message_to(1), 5s, sim.now());

  const Ticket paused = sim.submit(message_to(1));
  const Ticket delete_in_paused =
      sim.submit({.kind = FloodClass::other, .chat = ChatKey{std::int64_t{1}}});
  const Ticket other_chat = sim.submit(message_to(2));
  const Ticket no_chat = sim.submit({.kind = FloodClass::other});

  EXPECT_FALSE(sim.granted_at(paused).has_value());
  EXPECT_FALSE(sim.granted_at(delete_in_paused).has_value());
  EXPECT_EQ(sim.granted_at(other_chat), std::optional(kStart));
  EXPECT_EQ(sim.granted_at(no_chat), std::optional(kStart));

  sim.run_until(kStart + 10s);
  EXPECT_EQ(sim.granted_at(paused), std::optional(kStart + 5s));
  EXPECT_EQ(sim.granted_at(delete_in_paused), std::optional(kStart + 5s));
}

TEST(FloodController, PauseIsNotLiftedEarly) {
  Simulation sim(no_budgets());
  sim.controller().pause(message_to(1), 10s, sim.now());
  const Ticket waiting = sim.submit(message_to(1));

  // A shorter 429 later, and other chats' calls finishing, change nothing.
  sim.advance(1s);
  sim.controller().pause(message_to(1), 2s, sim.now());
  for (std::int64_t chat = 2; chat < 50; ++chat) {
    sim.submit(message_to(chat));
    sim.advance(100ms);
  }
  EXPECT_FALSE(sim.granted_at(waiting).has_value());
  ASSERT_TRUE(sim.controller().paused_until(message_to(1), sim.now()).has_value());
  EXPECT_EQ(*sim.controller().paused_until(message_to(1), sim.now()), kStart + 10s);

  sim.run_until(kStart + 20s);
  EXPECT_EQ(sim.granted_at(waiting), std::optional(kStart + 10s));
}

TEST(FloodController, PauseExtendsWithLongerRetryAfter) {
  Simulation sim(no_budgets());
  sim.controller().pause(message_to(1), 2s, sim.now());
  sim.advance(1s);
  sim.controller().pause(message_to(1), 5s, sim.now());
  EXPECT_EQ(*sim.controller().paused_until(message_to(1), sim.now()), kStart + 6s);
}

TEST(FloodController, PauseWithoutChatHoldsEverything) {
  Simulation sim(no_budgets());
  sim.controller().pause({.kind = FloodClass::other}, 3s, sim.now());

  const Ticket message = sim.submit(message_to(1));
  const Ticket get_me = sim.submit({.kind = FloodClass::other});
  EXPECT_EQ(sim.granted_count(), 0U);
  EXPECT_FALSE(
      sim.controller().paused_until({.kind = FloodClass::bypass}, sim.now()).has_value());

  sim.run_until(kStart + 5s);
  EXPECT_EQ(sim.granted_at(message), std::optional(kStart + 3s));
  EXPECT_EQ(sim.granted_at(get_me), std::optional(kStart + 3s));
}

TEST(FloodController, PauseAllOnChat429Option) {
  FloodOptions options = no_budgets();
  options.pause_all_on_chat_429 = true;
  Simulation sim(options);
  sim.controller().pause(message_to(1), 3s, sim.now());

  const Ticket other_chat = sim.submit(message_to(2));
  EXPECT_FALSE(sim.granted_at(other_chat).has_value());
  sim.run_until(kStart + 5s);
  EXPECT_EQ(sim.granted_at(other_chat), std::optional(kStart + 3s));
}

TEST(FloodController, NoBurstAfterPause) {
  FloodOptions options = no_budgets();
  options.per_chat = {.limit = 1, .period = 1s, .burst = 3};
  Simulation sim(options);
  sim.controller().pause(message_to(1), 5s, sim.now());

  std::vector<Ticket> tickets;
  for (int i = 0; i < 3; ++i) {
    tickets.push_back(sim.submit(message_to(1)));
  }
  sim.run_until(kStart + 20s);
  EXPECT_EQ(sim.granted_at(tickets[0]), std::optional(kStart + 5s));
  EXPECT_EQ(sim.granted_at(tickets[1]), std::optional(kStart + 6s));
  EXPECT_EQ(sim.granted_at(tickets[2]), std::optional(kStart + 7s));
}

TEST(FloodController, InteractiveBeforeBulk) {
  FloodOptions options = no_budgets();
  options.global = {.limit = 1, .period = 1s, .burst = 1};
  Simulation sim(options);

  std::vector<Ticket> bulk;
  for (std::int64_t chat = 1; chat <= 5; ++chat) {
    bulk.push_back(sim.submit(message_to(chat, Lane::bulk)));
  }
  const Ticket interactive_a = sim.submit(message_to(100));
  const Ticket interactive_b = sim.submit(message_to(101));
  sim.run_until(kStart + 10s);

  // The first bulk call found the budget free; after it, both interactive
  // calls go before the remaining bulk calls.
  const std::vector<Ticket> expected = {bulk[0], interactive_a, interactive_b, bulk[1],
                                        bulk[2], bulk[3],       bulk[4]};
  EXPECT_EQ(sim.order(), expected);
}

TEST(FloodController, BulkTakesBudgetInteractiveCannotUse) {
  FloodOptions options = no_budgets();
  options.global = {.limit = 10, .period = 1s, .burst = 10};
  options.per_chat = {.limit = 1, .period = 1s, .burst = 1};
  Simulation sim(options);

  sim.submit(message_to(1));
  const Ticket interactive_blocked = sim.submit(message_to(1));
  const Ticket bulk_other_chat = sim.submit(message_to(2, Lane::bulk));

  EXPECT_FALSE(sim.granted_at(interactive_blocked).has_value());
  EXPECT_EQ(sim.granted_at(bulk_other_chat), std::optional(kStart));
}

TEST(FloodController, CancelledTicketIsNotGranted) {
  FloodOptions options = no_budgets();
  options.per_chat = {.limit = 1, .period = 1s, .burst = 1};
  Simulation sim(options);

  sim.submit(message_to(1));
  const Ticket cancelled = sim.submit(message_to(1));
  const Ticket kept = sim.submit(message_to(1));
  EXPECT_TRUE(sim.controller().cancel(cancelled));
  EXPECT_FALSE(sim.controller().cancel(cancelled));

  sim.run_until(kStart + 5s);
  EXPECT_FALSE(sim.granted_at(cancelled).has_value());
  // The cancelled ticket took no budget: the next one goes after 1 s.
  EXPECT_EQ(sim.granted_at(kept), std::optional(kStart + 1s));
  EXPECT_EQ(sim.controller().queued(), 0U);
}

TEST(FloodController, EvictionBoundsMemory) {
  FloodOptions options;
  options.paid_broadcast = {.limit = 1000, .period = 1s, .burst = 50};
  Simulation sim(options);

  // 100,000 chats, one paid message each, submitted as fast as granted.
  constexpr std::int64_t kChats = 100'000;
  std::size_t most_tracked = 0;
  for (std::int64_t chat = 1; chat <= kChats; ++chat) {
    FloodRequest request = message_to(chat, Lane::bulk);
    request.paid_broadcast = true;
    const Ticket ticket = sim.submit(request);
    while (!sim.granted_at(ticket)) {
      sim.run_until(*sim.controller().next_wakeup());
    }
    most_tracked = std::max(most_tracked, sim.controller().tracked_chats());
  }

  EXPECT_EQ(sim.granted_count(), static_cast<std::size_t>(kChats));
  // An entry lives until its chat budget is full again (3 s at 1/s, burst
  // 3) plus one sweep interval: about 4 s of traffic at 1000/s.
  EXPECT_LE(most_tracked, 5000U);
  sim.advance(10s);
  EXPECT_EQ(sim.controller().tracked_chats(), 0U);
}

TEST(FloodController, PausedChatIsNotEvicted) {
  Simulation sim(no_budgets());
  sim.controller().pause(message_to(1), 30s, sim.now());
  sim.advance(10s);
  EXPECT_EQ(sim.controller().tracked_chats(), 1U);
  EXPECT_TRUE(sim.controller().paused_until(message_to(1), sim.now()).has_value());
  sim.advance(30s);
  EXPECT_EQ(sim.controller().tracked_chats(), 0U);
}

}  // namespace
}  // namespace sluice::telegram
