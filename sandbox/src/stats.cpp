#include <sluice/sandbox/stats.hpp>

#include <algorithm>
#include <bit>
#include <cmath>

#include "json_number.hpp"

namespace sluice::sandbox {
namespace {

// Values are kept in microseconds: bucket (octave, sub) covers
// [2^octave * (1 + sub/16), 2^octave * (1 + (sub+1)/16)) µs.
std::uint64_t to_micros(std::chrono::nanoseconds value) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(value.count() / 1000, 1));
}

}  // namespace

void LatencyHistogram::add(std::chrono::nanoseconds value) {
  auto micros = to_micros(value);
  int octave = std::bit_width(micros) - 1;
  octave = std::min(octave, kOctaves - 1);
  auto base = std::uint64_t{1} << octave;
  auto sub = static_cast<int>(((micros - std::min(micros, base)) * kSubBuckets) / base);
  sub = std::clamp(sub, 0, kSubBuckets - 1);
  ++buckets_[static_cast<std::size_t>(octave * kSubBuckets + sub)];
  ++count_;
  max_ = std::max(max_, value);
}

std::chrono::nanoseconds LatencyHistogram::percentile(double fraction) const {
  if (count_ == 0) {
    return std::chrono::nanoseconds{0};
  }
  auto rank = static_cast<std::uint64_t>(std::ceil(std::clamp(fraction, 0.0, 1.0) * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      auto octave = static_cast<int>(i) / kSubBuckets;
      auto sub = static_cast<int>(i) % kSubBuckets;
      auto base = static_cast<double>(std::uint64_t{1} << octave);
      auto upper_micros = base * (1.0 + static_cast<double>(sub + 1) / kSubBuckets);
      auto upper = std::chrono::nanoseconds(static_cast<std::int64_t>(upper_micros * 1000));
      return std::min(upper, max_);
    }
  }
  return max_;
}

boost::json::object LatencyHistogram::to_json_ms() const {
  auto ms = [](std::chrono::nanoseconds value) {
    return json_number(std::round(static_cast<double>(value.count()) / 1e3) / 1e3);
  };
  boost::json::object result;
  result["count"] = count_;
  result["p50"] = ms(percentile(0.5));
  result["p90"] = ms(percentile(0.9));
  result["p99"] = ms(percentile(0.99));
  result["p999"] = ms(percentile(0.999));
  result["max"] = ms(max_);
  return result;
}

}  // namespace sluice::sandbox
