#pragma once

#include <string>

#include <sluice/telegram/json_fwd.hpp>

namespace sluice::telegram {

/// The last alternative of every union type that Telegram sends (ChatMember,
/// MessageOrigin, ReactionType, ...): an object whose discriminator value
/// this version of sluice does not know, for example a ChatMember status
/// added to the Bot API after spec/botapi.json was generated.
///
/// Keeping it, instead of failing, means an update with a new kind of
/// member, reaction or origin still parses; handlers that care can read
/// the raw object. Writing an UnknownVariant back to JSON reproduces the
/// object. Unions that only the bot sends (InputMedia, BotCommandScope,
/// ...) have no such alternative: an unknown value there is a parse error.
struct UnknownVariant {
  /// Value of the discriminator field, for example "status" = "guest".
  std::string discriminator{};
  /// The whole JSON object, serialised.
  std::string json{};

  bool operator==(const UnknownVariant&) const = default;
};

/// Parses `in.json` into `json`; throws boost::system::system_error when
/// `in.json` is not valid JSON.
void write_json(boost::json::value& json, const UnknownVariant& in, detail::WriteContext& context);

}  // namespace sluice::telegram
