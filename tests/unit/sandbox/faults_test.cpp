#include <sluice/sandbox/faults.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace sluice::sandbox {
namespace {

using namespace std::chrono_literals;

FaultRule rule(std::string method, FaultKind kind, double rate) {
  FaultRule result;
  result.method = std::move(method);
  result.kind = kind;
  result.rate = rate;
  return result;
}

TEST(FaultInjector, RateOneAlwaysFires) {
  FaultInjector injector({rule("sendMessage", FaultKind::server_error, 1.0)});
  for (int i = 0; i < 10; ++i) {
    auto decision = injector.decide("sendmessage");
    ASSERT_TRUE(decision.failure.has_value());
    EXPECT_EQ(*decision.failure, FaultKind::server_error);
    EXPECT_EQ(decision.status, 500u);
  }
  EXPECT_FALSE(injector.decide("getMe").failure.has_value());
}

TEST(FaultInjector, SameSeedSameDecisions) {
  std::vector<FaultRule> rules = {rule("*", FaultKind::reset_before_handling, 0.3)};
  FaultInjector first(rules, 42);
  FaultInjector second(rules, 42);
  int fired = 0;
  for (int i = 0; i < 1000; ++i) {
    auto a = first.decide("sendMessage").failure.has_value();
    auto b = second.decide("sendMessage").failure.has_value();
    EXPECT_EQ(a, b) << "call " << i;
    fired += a ? 1 : 0;
  }
  EXPECT_GT(fired, 200);
  EXPECT_LT(fired, 400);
}

TEST(FaultInjector, MaxCountStopsRule) {
  auto limited = rule("*", FaultKind::cut_body, 1.0);
  limited.max_count = 2;
  FaultInjector injector({limited});
  EXPECT_TRUE(injector.decide("getMe").failure.has_value());
  EXPECT_TRUE(injector.decide("getMe").failure.has_value());
  EXPECT_FALSE(injector.decide("getMe").failure.has_value());
  EXPECT_EQ(injector.rules()[0].fired, 2u);
}

TEST(FaultInjector, LatencyAddsWithinRange) {
  auto slow = rule("*", FaultKind::latency, 1.0);
  slow.latency_min = 10ms;
  slow.latency_max = 20ms;
  auto fixed = rule("getMe", FaultKind::latency, 1.0);
  fixed.latency_min = fixed.latency_max = 5ms;
  FaultInjector injector({slow, fixed});
  for (int i = 0; i < 50; ++i) {
    auto decision = injector.decide("getMe");
    EXPECT_GE(decision.delay, 15ms);
    EXPECT_LE(decision.delay, 25ms);
    EXPECT_FALSE(decision.failure.has_value());
  }
}

TEST(FaultInjector, RulesFromJson) {
  auto rules = fault_rules_from_json(boost::json::parse(R"([
    {"method": "sendMessage", "kind": "server_error", "rate": 0.5, "status": 502},
    {"kind": "latency", "latency_ms": [5, 50]},
    {"kind": "black_hole", "max_count": 3}
  ])"));
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].status, 502u);
  EXPECT_EQ(rules[0].rate, 0.5);
  EXPECT_EQ(rules[1].method, "*");
  EXPECT_EQ(rules[1].latency_max, 50ms);
  EXPECT_EQ(rules[2].max_count, 3u);
  EXPECT_THROW(fault_rules_from_json(boost::json::parse(R"([{"kind": "explode"}])")), std::invalid_argument);
  EXPECT_THROW(fault_rules_from_json(boost::json::parse(R"([{"kind": "latency", "rate": 2}])")),
               std::invalid_argument);
  EXPECT_THROW(fault_rules_from_json(boost::json::parse(R"([{"kind": "server_error", "status": 404}])")),
               std::invalid_argument);
}

TEST(FaultInjector, RulesToJsonWriteWholeRatesAsIntegers) {
  std::vector<FaultRule> rules = {rule("*", FaultKind::latency, 1.0), rule("getMe", FaultKind::server_error, 0.25)};
  const std::string text = boost::json::serialize(fault_rules_to_json(rules));
  EXPECT_NE(text.find(R"("rate":1,)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("rate":2.5E-1)"), std::string::npos) << text;
}

}  // namespace
}  // namespace sluice::sandbox
