// Sandbox: playing a scenario's timed events and simulated users.

#include <algorithm>
#include <random>
#include <stdexcept>
#include <vector>

#include "sandbox_impl.hpp"

namespace sluice::sandbox {
namespace asio = boost::asio;

namespace {

// The simulation pushes the messages that are due every tick; 10 ms keeps
// bursts small at thousands of messages per second.
constexpr auto kSimulationTick = std::chrono::milliseconds(10);

}  // namespace

asio::awaitable<void> Sandbox::Impl::run_scenario_events() {
  auto const& events = options_.scenario->events;
  for (auto const& event : events) {
    co_await sleep_until(started_at_ + event.at);
    if (stopping_) {
      co_return;
    }
    try {
      switch (event.kind) {
        case ScriptedEvent::Kind::message:
          engine_.push_user_message(event.user_id, event.chat_id, event.text, Clock::now());
          break;
        case ScriptedEvent::Kind::update:
          engine_.push_update(event.update, Clock::now());
          break;
        case ScriptedEvent::Kind::callback_query: {
          auto const chat_id = event.chat_id == 0 ? event.user_id : event.chat_id;
          auto const deadline = Clock::now() + event.wait_for_message;
          auto message_id = event.message_id;
          // Wait for the bot to send a message with a button to press.
          while (!message_id && !stopping_) {
            message_id = engine_.last_bot_message_with_buttons(chat_id);
            if (message_id || Clock::now() >= deadline) {
              break;
            }
            co_await changes_.wait_until(deadline);
          }
          if (!message_id) {
            log_->warn("scenario callback_query skipped: no bot message with a callback button user_id={} chat_id={}",
                       event.user_id, chat_id);
            break;
          }
          engine_.push_callback_query(event.user_id, chat_id, *message_id, event.data, Clock::now());
          break;
        }
        case ScriptedEvent::Kind::replay: {
          auto updates = load_update_files(event.replay_path);
          log_->info("scenario replay path={} updates={}", event.replay_path.string(), updates.size());
          for (auto& update : updates) {
            if (stopping_) {
              co_return;
            }
            engine_.push_update(std::move(update), Clock::now());
            notify();
            if (event.interval > std::chrono::milliseconds::zero()) {
              co_await sleep_until(Clock::now() + event.interval);
            }
          }
          break;
        }
      }
    } catch (std::exception const& error) {
      log_->warn("scenario event skipped at_ms={} error={}", event.at.count(), error.what());
    }
    notify();
  }
}

asio::awaitable<void> Sandbox::Impl::run_simulation() {
  auto const& spec = *options_.scenario->simulate;
  std::mt19937_64 random(spec.seed);
  std::bernoulli_distribution blocks(spec.blocked_fraction);
  std::vector<bool> will_block(static_cast<std::size_t>(spec.users));
  for (std::int64_t i = 0; i < spec.users; ++i) {
    User user;
    user.id = spec.first_user_id + i;
    user.first_name = "User " + std::to_string(i + 1);
    user.username = "sim_user_" + std::to_string(i + 1);
    user.language_code = "en";
    engine_.add_user(std::move(user));
    will_block[static_cast<std::size_t>(i)] = blocks(random);
  }

  if (spec.messages_per_user.empty()) {
    // Users who send nothing, such as the audience of a broadcast test. The
    // blocked fraction blocks the bot at start.
    for (std::int64_t i = 0; i < spec.users; ++i) {
      if (will_block[static_cast<std::size_t>(i)]) {
        engine_.block_bot(spec.first_user_id + i, Clock::now());
      }
    }
    notify();
    log_->info("simulation created users={} without messages", spec.users);
    co_return;
  }

  auto const per_user = static_cast<std::int64_t>(spec.messages_per_user.size());
  auto const total = spec.users * per_user;
  auto const begin = started_at_ + spec.start_at;
  log_->info("simulation started users={} messages={} rate_per_second={}", spec.users, total, spec.rate_per_second);
  co_await sleep_until(begin);

  std::int64_t sent = 0;
  while (sent < total && !stopping_) {
    auto const elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
    auto const due = std::min<std::int64_t>(total, static_cast<std::int64_t>(elapsed * spec.rate_per_second) + 1);
    for (; sent < due; ++sent) {
      // Users take turns: message k goes to user k % users.
      auto const user_index = sent % spec.users;
      auto const text_index = sent / spec.users;
      auto const user_id = spec.first_user_id + user_index;
      engine_.push_user_message(user_id, 0, spec.messages_per_user[static_cast<std::size_t>(text_index)],
                                Clock::now());
      if (text_index == per_user - 1 && will_block[static_cast<std::size_t>(user_index)]) {
        engine_.block_bot(user_id, Clock::now());
      }
    }
    notify();
    if (sent < total) {
      co_await sleep_until(Clock::now() + kSimulationTick);
    }
  }
  log_->info("simulation finished messages={}", sent);
}

}  // namespace sluice::sandbox
