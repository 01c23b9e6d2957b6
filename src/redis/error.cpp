#include <sluice/redis/error.hpp>

#include <string>
#include <utility>

namespace sluice::redis {
namespace {

class RedisErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.redis"; }

  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::connection_lost:
        return "connection lost after the request was written; it may have been executed";
      case Errc::not_connected:
        return "no connection to the Redis server";
      case Errc::timeout:
        return "timed out";
      case Errc::closed:
        return "client closed";
      case Errc::protocol_error:
        return "invalid RESP data from the server";
      case Errc::unexpected_reply:
        return "unexpected reply type";
      case Errc::invalid_url:
        return "invalid Redis URL";
      case Errc::handshake_failed:
        return "connection handshake failed";
    }
    return "unknown sluice.redis error " + std::to_string(value);
  }
};

std::string_view first_word(std::string_view text) {
  std::size_t end = text.find(' ');
  return end == std::string_view::npos ? text : text.substr(0, end);
}

}  // namespace

const std::error_category& error_category() noexcept {
  static const RedisErrorCategory category;
  return category;
}

std::error_code make_error_code(Errc code) noexcept {
  return {static_cast<int>(code), error_category()};
}

Error::Error(Errc code, std::string message)
    : std::system_error(make_error_code(code), message), message_(std::move(message)) {}

ServerError::ServerError(std::string_view command, std::string_view message)
    : std::runtime_error("redis " + std::string(command) + " failed: " + std::string(message)),
      error_code_(first_word(message)),
      server_message_(message) {}

}  // namespace sluice::redis
