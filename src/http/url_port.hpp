#pragma once

#include <charconv>
#include <cstdint>
#include <system_error>

#include <boost/url/url_view_base.hpp>

namespace sluice::http::detail {

/// Returns the port of `url`, or 0 when it has none or it is not a number
/// from 1 to 65535. Boost.URL's port_number() keeps only the low 16 bits
/// of a larger number, so that 99999 would become 34463.
inline std::uint16_t port_of(boost::urls::url_view_base const& url) {
  std::uint32_t port = 0;
  auto const text = url.port();
  auto const [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (error != std::errc{} || end != text.data() + text.size() || port > 65535) {
    return 0;
  }
  return static_cast<std::uint16_t>(port);
}

}  // namespace sluice::http::detail
