#include <sluice/sandbox/flood.hpp>

#include <algorithm>
#include <cmath>

namespace sluice::sandbox {

double RateLimit::per_second() const {
  return count / std::chrono::duration<double>(period).count();
}

FloodControl::FloodControl(FloodOptions options)
    : options_(options),
      global_(options.global.per_second(), options.global.burst),
      paid_(options.paid_broadcast.per_second(), options.paid_broadcast.burst),
      private_chats_(options.private_chat.per_second(), options.private_chat.burst),
      groups_(options.group.per_second(), options.group.burst) {}

void FloodControl::set_options(FloodOptions options) {
  *this = FloodControl(options);
}

std::optional<std::int64_t> FloodControl::admit(std::int64_t chat_id, bool is_group, bool paid_broadcast, Instant now) {
  if (!options_.enabled) {
    return std::nullopt;
  }
  auto& shared = paid_broadcast ? paid_ : global_;
  auto& chats = is_group ? groups_ : private_chats_;

  // Check every bucket first, so that a rejected send takes no token.
  auto wait = std::max(shared.time_until_available(now), chats.time_until_available(chat_id, now));
  if (wait > Clock::duration::zero()) {
    auto seconds = std::chrono::duration<double>(wait).count();
    return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(seconds)));
  }
  shared.try_acquire(now);
  chats.try_acquire(chat_id, now);
  return std::nullopt;
}

}  // namespace sluice::sandbox
