#pragma once

// Removal of bot tokens and other secrets from text that leaves the process:
// log lines, exception messages, metric labels.
//
// A bot token has the shape `<bot id>:<secret>` (digits, a colon, then at
// least 30 characters from [A-Za-z0-9_-]); every such substring is replaced,
// whether or not it was registered. Secrets of other shapes (a webhook secret
// token, a proxy password) are replaced once they are registered.

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/sinks/sink.h>

namespace spdlog {
class logger;
}

namespace sluice::telegram {

/// Text that replaces every removed secret: `/bot123:AAE.../getMe` becomes
/// `/bot<redacted>/getMe`.
inline constexpr std::string_view kRedactedText = "<redacted>";

/// Shortest secret accepted by `register_secret`. A shorter string would
/// match too much unrelated text.
inline constexpr std::size_t kMinSecretLength = 8;

/// Returns `text` with every bot token and every registered secret replaced
/// by `kRedactedText`.
///
/// Thread-safe. Costs one scan of `text` plus one substring search per
/// registered secret.
std::string redact(std::string_view text);

/// Returns true when `text` contains a bot token or a registered secret.
bool contains_secret(std::string_view text);

/// Adds `secret` to the process-wide list that `redact` removes. Registering
/// the same secret twice has no effect. Thread-safe.
///
/// Throws std::invalid_argument when `secret` is shorter than
/// kMinSecretLength.
void register_secret(std::string_view secret);

/// Number of registered secrets (for tests and diagnostics).
std::size_t registered_secret_count();

/// spdlog sink that redacts each message payload, then forwards the message
/// to `inner`. Level, pattern and formatter calls are forwarded to `inner`.
///
/// Thread-safe when `inner` is.
class RedactingSink final : public spdlog::sinks::sink {
 public:
  explicit RedactingSink(std::shared_ptr<spdlog::sinks::sink> inner);

  void log(const spdlog::details::log_msg& msg) override;
  void flush() override;
  void set_pattern(const std::string& pattern) override;
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override;

  [[nodiscard]] const std::shared_ptr<spdlog::sinks::sink>& inner() const { return inner_; }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

/// Wraps every sink of `logger` that is not a RedactingSink yet in one.
/// Calling it again is harmless.
///
/// NOTE: spdlog does not lock a logger's sink list, so call this before other
/// threads log through `logger`.
void install_redaction(spdlog::logger& logger);

/// Wraps the sinks of the default logger and of every registered logger, so
/// that loggers created later by `sluice::runtime::module_logger` (which copy
/// the default logger's sinks) redact too. Same threading note as above.
void install_redaction_everywhere();

}  // namespace sluice::telegram
