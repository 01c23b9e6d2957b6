#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <utility>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice::db {

/// Bytes for a BLOB (SQLite) or bytea (PostgreSQL) column.
using Blob = std::vector<std::byte>;

/// One bound statement parameter, owned (so a statement may outlive the
/// caller's arguments while it waits for a connection or a thread).
struct Param {
  enum class Kind : std::uint8_t { null, boolean, integer, real, text, blob };

  Kind kind = Kind::null;
  std::int64_t integer = 0;  ///< boolean (0/1) and integer
  double real = 0.0;
  std::string bytes;         ///< text and blob
};

using Params = std::vector<Param>;

namespace detail {

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

}  // namespace detail

/// Converts one argument of execute()/query() to a Param. Supported: bool,
/// integers (an unsigned value above INT64_MAX throws std::out_of_range),
/// floating point, anything convertible to std::string_view (text), Blob
/// and std::span<const std::byte> (blob), std::nullopt / nullptr (NULL),
/// std::optional<T>.
template <class T>
Param to_param(const T& value) {
  using U = std::remove_cvref_t<T>;
  Param param;
  if constexpr (std::is_same_v<U, std::nullptr_t> || std::is_same_v<U, std::nullopt_t>) {
    param.kind = Param::Kind::null;
  } else if constexpr (detail::IsOptional<U>::value) {
    if (value) {
      return to_param(*value);
    }
    param.kind = Param::Kind::null;
  } else if constexpr (std::is_same_v<U, bool>) {
    param.kind = Param::Kind::boolean;
    param.integer = value ? 1 : 0;
  } else if constexpr (std::is_integral_v<U>) {
    if (!std::in_range<std::int64_t>(value)) {
      throw std::out_of_range("integer parameter " + std::to_string(value) + " does not fit in int64");
    }
    param.kind = Param::Kind::integer;
    param.integer = static_cast<std::int64_t>(value);
  } else if constexpr (std::is_floating_point_v<U>) {
    param.kind = Param::Kind::real;
    param.real = static_cast<double>(value);
  } else if constexpr (std::is_same_v<U, Blob> || std::is_convertible_v<const U&, std::span<const std::byte>>) {
    std::span<const std::byte> bytes(value);
    param.kind = Param::Kind::blob;
    param.bytes.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
    param.kind = Param::Kind::text;
    param.bytes = std::string(std::string_view(value));
  } else {
    static_assert(sizeof(U) == 0, "unsupported parameter type");
  }
  return param;
}

template <class... Args>
Params make_params(const Args&... args) {
  Params params;
  params.reserve(sizeof...(Args));
  (params.push_back(to_param(args)), ...);
  return params;
}

}  // namespace sluice::db
