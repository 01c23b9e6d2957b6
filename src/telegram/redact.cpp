#include <sluice/telegram/redact.hpp>

#include <algorithm>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

namespace sluice::telegram {
namespace {

// The secret part of a bot token issued by @BotFather is 35 characters; the
// pattern accepts 30 or more so that tokens of other lengths are caught too.
constexpr std::size_t kMinTokenSecretLength = 30;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' ||
         c == '-';
}

struct TokenMatch {
  std::size_t begin = 0;
  std::size_t end = 0;
};

// Finds the first `\d+:[A-Za-z0-9_-]{30,}` at or after `from`.
std::optional<TokenMatch> find_token(std::string_view text, std::size_t from) {
  for (std::size_t colon = text.find(':', from); colon != std::string_view::npos;
       colon = text.find(':', colon + 1)) {
    std::size_t begin = colon;
    while (begin > from && is_digit(text[begin - 1])) {
      --begin;
    }
    if (begin == colon) {
      continue;
    }
    std::size_t end = colon + 1;
    while (end < text.size() && is_token_char(text[end])) {
      ++end;
    }
    if (end - colon - 1 >= kMinTokenSecretLength) {
      return TokenMatch{begin, end};
    }
  }
  return std::nullopt;
}

class SecretRegistry {
 public:
  std::shared_ptr<const std::vector<std::string>> snapshot() const {
    std::lock_guard lock(mutex_);
    return secrets_;
  }

  void add(std::string_view secret) {
    std::lock_guard lock(mutex_);
    if (std::find(secrets_->begin(), secrets_->end(), secret) != secrets_->end()) {
      return;
    }
    // Copy on write: readers keep using the list they took.
    auto next = std::make_shared<std::vector<std::string>>(*secrets_);
    next->emplace_back(secret);
    secrets_ = std::move(next);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<std::string>> secrets_ =
      std::make_shared<const std::vector<std::string>>();
};

SecretRegistry& registry() {
  static SecretRegistry instance;
  return instance;
}

std::string remove_tokens(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (auto match = find_token(text, 0); match; match = find_token(text, match->end)) {
    out.append(text.substr(copied, match->begin - copied));
    out.append(kRedactedText);
    copied = match->end;
  }
  out.append(text.substr(copied));
  return out;
}

void remove_secret(std::string& text, std::string_view secret) {
  for (std::size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + kRedactedText.size())) {
    text.replace(at, secret.size(), kRedactedText);
  }
}

}  // namespace

std::string redact(std::string_view text) {
  std::string out = remove_tokens(text);
  const auto secrets = registry().snapshot();
  for (const auto& secret : *secrets) {
    remove_secret(out, secret);
  }
  return out;
}

bool contains_secret(std::string_view text) {
  if (find_token(text, 0)) {
    return true;
  }
  const auto secrets = registry().snapshot();
  return std::any_of(secrets->begin(), secrets->end(), [text](const std::string& secret) {
    return text.find(secret) != std::string_view::npos;
  });
}

void register_secret(std::string_view secret) {
  if (secret.size() < kMinSecretLength) {
    throw std::invalid_argument(fmt::format(
        "secret of {} characters is too short to redact safely: the minimum is {}",
        secret.size(), kMinSecretLength));
  }
  registry().add(secret);
}

std::size_t registered_secret_count() { return registry().snapshot()->size(); }

RedactingSink::RedactingSink(std::shared_ptr<spdlog::sinks::sink> inner)
    : inner_(std::move(inner)) {
  if (!inner_) {
    throw std::invalid_argument("RedactingSink needs a sink to forward to");
  }
  // The level check happens in log() against the inner sink, so that a later
  // set_level() on the inner sink still takes effect.
  set_level(spdlog::level::trace);
}

void RedactingSink::log(const spdlog::details::log_msg& msg) {
  if (!inner_->should_log(msg.level)) {
    return;
  }
  const std::string_view payload(msg.payload.data(), msg.payload.size());
  if (!contains_secret(payload)) {
    inner_->log(msg);
    return;
  }
  const std::string clean = redact(payload);
  spdlog::details::log_msg copy = msg;
  copy.payload = spdlog::string_view_t(clean.data(), clean.size());
  inner_->log(copy);
}

void RedactingSink::flush() { inner_->flush(); }

void RedactingSink::set_pattern(const std::string& pattern) { inner_->set_pattern(pattern); }

void RedactingSink::set_formatter(std::unique_ptr<spdlog::formatter> formatter) {
  inner_->set_formatter(std::move(formatter));
}

void install_redaction(spdlog::logger& logger) {
  for (auto& sink : logger.sinks()) {
    if (std::dynamic_pointer_cast<RedactingSink>(sink)) {
      continue;
    }
    sink = std::make_shared<RedactingSink>(std::move(sink));
  }
}

void install_redaction_everywhere() {
  if (auto default_logger = spdlog::default_logger()) {
    install_redaction(*default_logger);
  }
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& logger) {
    install_redaction(*logger);
  });
}

}  // namespace sluice::telegram
