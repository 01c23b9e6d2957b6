#include <sluice/sandbox/faults.hpp>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "json_number.hpp"

namespace sluice::sandbox {
namespace {

constexpr std::array<std::pair<FaultKind, std::string_view>, 6> kFaultNames{{
    {FaultKind::latency, "latency"},
    {FaultKind::server_error, "server_error"},
    {FaultKind::reset_before_handling, "reset_before_handling"},
    {FaultKind::reset_after_handling, "reset_after_handling"},
    {FaultKind::cut_body, "cut_body"},
    {FaultKind::black_hole, "black_hole"},
}};

bool method_matches(std::string_view pattern, std::string_view method) {
  if (pattern == "*") {
    return true;
  }
  if (pattern.size() != method.size()) {
    return false;
  }
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(pattern[i]) != lower(method[i])) {
      return false;
    }
  }
  return true;
}

double number_field(boost::json::object const& object, std::string_view name, double fallback) {
  auto const* value = object.if_contains(name);
  if (value == nullptr) {
    return fallback;
  }
  if (value->is_int64()) {
    return static_cast<double>(value->get_int64());
  }
  if (value->is_uint64()) {
    return static_cast<double>(value->get_uint64());
  }
  if (value->is_double()) {
    return value->get_double();
  }
  throw std::invalid_argument("fault rule field \"" + std::string(name) + "\" must be a number");
}

}  // namespace

std::string_view fault_kind_name(FaultKind kind) {
  for (auto const& [candidate, name] : kFaultNames) {
    if (candidate == kind) {
      return name;
    }
  }
  return "unknown";
}

std::optional<FaultKind> parse_fault_kind(std::string_view name) {
  for (auto const& [kind, candidate] : kFaultNames) {
    if (candidate == name) {
      return kind;
    }
  }
  return std::nullopt;
}

FaultInjector::FaultInjector(std::vector<FaultRule> rules, std::uint64_t seed)
    : rules_(std::move(rules)), random_(seed) {}

FaultDecision FaultInjector::decide(std::string_view method) {
  FaultDecision decision;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (auto& rule : rules_) {
    if (rule.fired >= rule.max_count || !method_matches(rule.method, method)) {
      continue;
    }
    if (rule.kind != FaultKind::latency && decision.failure) {
      continue;
    }
    // Every matching rule draws, so the sequence of draws (and therefore a
    // run) depends only on the seed and the calls.
    if (unit(random_) >= rule.rate) {
      continue;
    }
    ++rule.fired;
    if (rule.kind == FaultKind::latency) {
      auto low = rule.latency_min.count();
      auto high = std::max(rule.latency_max.count(), low);
      std::uniform_int_distribution<std::int64_t> spread(low, high);
      decision.delay += std::chrono::milliseconds(spread(random_));
      continue;
    }
    decision.failure = rule.kind;
    decision.status = rule.status;
  }
  return decision;
}

std::vector<FaultRule> fault_rules_from_json(boost::json::value const& value) {
  if (!value.is_array()) {
    throw std::invalid_argument("faults must be an array of rule objects");
  }
  std::vector<FaultRule> rules;
  for (auto const& item : value.get_array()) {
    if (!item.is_object()) {
      throw std::invalid_argument("each fault rule must be an object");
    }
    auto const& object = item.get_object();
    FaultRule rule;
    if (auto const* method = object.if_contains("method")) {
      if (!method->is_string()) {
        throw std::invalid_argument("fault rule field \"method\" must be a string");
      }
      rule.method = std::string(method->get_string());
    }
    auto const* kind = object.if_contains("kind");
    if (kind == nullptr || !kind->is_string()) {
      throw std::invalid_argument("fault rule field \"kind\" is missing or not a string");
    }
    auto parsed = parse_fault_kind(kind->get_string());
    if (!parsed) {
      throw std::invalid_argument("unknown fault kind \"" + std::string(kind->get_string()) +
                                  "\"; expected latency, server_error, reset_before_handling, "
                                  "reset_after_handling, cut_body or black_hole");
    }
    rule.kind = *parsed;
    rule.rate = number_field(object, "rate", 1.0);
    if (rule.rate < 0 || rule.rate > 1) {
      throw std::invalid_argument("fault rule field \"rate\" must be between 0 and 1");
    }
    if (auto const* latency = object.if_contains("latency_ms")) {
      if (latency->is_array() && latency->get_array().size() == 2) {
        boost::json::object pair;
        pair["low"] = latency->get_array()[0];
        pair["high"] = latency->get_array()[1];
        rule.latency_min = std::chrono::milliseconds(static_cast<std::int64_t>(number_field(pair, "low", 0)));
        rule.latency_max = std::chrono::milliseconds(static_cast<std::int64_t>(number_field(pair, "high", 0)));
      } else {
        auto fixed = static_cast<std::int64_t>(number_field(object, "latency_ms", 0));
        rule.latency_min = rule.latency_max = std::chrono::milliseconds(fixed);
      }
    }
    rule.status = static_cast<unsigned>(number_field(object, "status", 500));
    if (rule.status < 500 || rule.status > 599) {
      throw std::invalid_argument("fault rule field \"status\" must be a 5xx HTTP status");
    }
    if (object.contains("max_count")) {
      rule.max_count = static_cast<std::uint64_t>(number_field(object, "max_count", 0));
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

boost::json::value fault_rules_to_json(std::vector<FaultRule> const& rules) {
  boost::json::array result;
  for (auto const& rule : rules) {
    boost::json::object object;
    object["method"] = rule.method;
    object["kind"] = fault_kind_name(rule.kind);
    object["rate"] = json_number(rule.rate);
    if (rule.kind == FaultKind::latency) {
      object["latency_ms"] = boost::json::array{rule.latency_min.count(), rule.latency_max.count()};
    }
    if (rule.kind == FaultKind::server_error) {
      object["status"] = rule.status;
    }
    if (rule.max_count != std::numeric_limits<std::uint64_t>::max()) {
      object["max_count"] = rule.max_count;
    }
    object["fired"] = rule.fired;
    result.push_back(std::move(object));
  }
  return result;
}

}  // namespace sluice::sandbox
