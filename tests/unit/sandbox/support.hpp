#pragma once

// Helpers shared by the sandbox tests.

#include <chrono>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include <sluice/sandbox/engine.hpp>

namespace sluice::sandbox::testing {

using namespace std::chrono_literals;

inline std::string read_text_file(std::string const& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// Parses a file under tests/data, e.g. "responses/ok_get_me_01.json".
inline boost::json::value load_data(std::string const& relative) {
  return boost::json::parse(read_text_file(std::string(SLUICE_TEST_DATA_DIR) + "/" + relative));
}

/// Returns a name for the JSON kind of `value`, with all integers alike.
inline std::string_view json_kind(boost::json::value const& value) {
  if (value.is_int64() || value.is_uint64()) {
    return "integer";
  }
  if (value.is_double()) {
    return "float";
  }
  if (value.is_string()) {
    return "string";
  }
  if (value.is_bool()) {
    return "bool";
  }
  if (value.is_object()) {
    return "object";
  }
  if (value.is_array()) {
    return "array";
  }
  return "null";
}

/// Checks that every key present in both `actual` and `recorded` has the
/// same JSON kind, recursively (arrays: their first elements).
inline void expect_same_shape(boost::json::value const& actual, boost::json::value const& recorded,
                              std::string const& path = "$") {
  ASSERT_EQ(json_kind(actual), json_kind(recorded)) << "at " << path << ": actual " << boost::json::serialize(actual)
                                                    << ", recorded " << boost::json::serialize(recorded);
  if (actual.is_object()) {
    for (auto const& [key, value] : actual.get_object()) {
      if (auto const* other = recorded.get_object().if_contains(key)) {
        expect_same_shape(value, *other, path + "." + std::string(key));
      }
    }
  } else if (actual.is_array() && !actual.get_array().empty() && !recorded.get_array().empty()) {
    expect_same_shape(actual.get_array()[0], recorded.get_array()[0], path + "[0]");
  }
}

/// Returns the set of keys of a JSON object, for key-order-free comparison.
inline std::vector<std::string> keys_of(boost::json::value const& value) {
  std::vector<std::string> keys;
  for (auto const& [key, field] : value.get_object()) {
    keys.emplace_back(key);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

/// A reply parsed for assertions.
struct Parsed {
  unsigned status = 0;
  boost::json::value body;

  bool ok() const { return body.at("ok").as_bool(); }
  boost::json::value const& result() const { return body.at("result"); }
  std::string description() const { return std::string(body.at("description").as_string()); }
};

inline Parsed parse_reply(ApiReply const& reply) {
  return Parsed{reply.status, boost::json::parse(reply.body)};
}

/// Drives an Engine on a simulated clock.
class Harness {
 public:
  explicit Harness(EngineOptions options = default_options()) : now_(Instant{} + 1000h), engine_(options, now_) {}

  static EngineOptions default_options() {
    EngineOptions options;
    options.start_unix_time = 1'700'000'000;
    options.first_update_id = 500;
    return options;
  }

  Engine& engine() { return engine_; }
  Instant now() const { return now_; }
  void advance(Instant::duration step) { now_ += step; }

  /// Calls `method` with `params` and returns the immediate reply; fails the
  /// test if the engine asked to wait.
  Parsed call(std::string_view method, boost::json::object params = {}, std::string token = {}) {
    auto outcome = start(method, std::move(params), std::move(token));
    if (!std::holds_alternative<ApiReply>(outcome)) {
      ADD_FAILURE() << method << " waited instead of replying";
      return {};
    }
    return parse_reply(std::get<ApiReply>(outcome));
  }

  Outcome start(std::string_view method, boost::json::object params = {}, std::string token = {}) {
    ApiRequest request;
    request.token = token.empty() ? engine_.bot().token : token;
    request.method = std::string(method);
    request.params = std::move(params);
    return engine_.handle(std::move(request), now_);
  }

  /// Adds a user with a private chat.
  void add_user(std::int64_t id, std::string first_name = "Alice") {
    User user;
    user.id = id;
    user.first_name = std::move(first_name);
    user.username = "user" + std::to_string(id);
    user.language_code = "en";
    engine_.add_user(user);
  }

 private:
  Instant now_;
  Engine engine_;
};

}  // namespace sluice::sandbox::testing
