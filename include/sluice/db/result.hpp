#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <sluice/db/errors.hpp>
#include <sluice/db/param.hpp>

namespace sluice::db {

/// One value of a result row. PostgreSQL values arrive as text and are
/// parsed on access; SQLite values keep their storage class.
struct Cell {
  enum class Type : std::uint8_t { null, integer, real, text, blob, hex_blob };

  Type type = Type::null;
  std::int64_t integer = 0;
  double real = 0.0;
  const char* data = nullptr;  ///< text and blob bytes, owned by the ResultSet
  std::size_t size = 0;
};

class ResultSet;

namespace detail {

[[noreturn]] void throw_conversion_error(const ResultSet& result, std::size_t column, const Cell& cell,
                                         std::string_view wanted);
std::int64_t cell_to_integer(const ResultSet& result, std::size_t column, const Cell& cell);
double cell_to_real(const ResultSet& result, std::size_t column, const Cell& cell);
bool cell_to_bool(const ResultSet& result, std::size_t column, const Cell& cell);
Blob cell_to_blob(const ResultSet& result, std::size_t column, const Cell& cell);
std::string cell_to_string(const ResultSet& result, std::size_t column, const Cell& cell);

template <class T>
struct IsOptionalResult : std::false_type {};
template <class T>
struct IsOptionalResult<std::optional<T>> : std::true_type {
  using value_type = T;
};

}  // namespace detail

/// One row of a ResultSet; valid while the ResultSet lives.
class Row {
 public:
  Row(const ResultSet& result, std::size_t index) noexcept : result_(&result), index_(index) {}

  /// Returns column `column` as T: std::int64_t and the other integer types
  /// (range-checked), double, bool, std::string, std::string_view (valid
  /// while the ResultSet lives), Blob, or std::optional of one of those for
  /// a nullable column. A NULL read as a non-optional type, a value that
  /// does not parse as T, or an unknown column raises ResultError naming
  /// the column.
  template <class T>
  T get(std::size_t column) const;

  /// Returns the column named `name` (first match) as T; see get(index).
  template <class T>
  T get(std::string_view name) const;

  bool is_null(std::size_t column) const;
  std::size_t size() const noexcept;

 private:
  const Cell& cell(std::size_t column) const;

  const ResultSet* result_;
  std::size_t index_;
};

/// The rows a query returned (all of them, in memory) and the number of
/// rows a statement changed.
class ResultSet {
 public:
  ResultSet() = default;
  ResultSet(ResultSet&&) noexcept = default;
  ResultSet& operator=(ResultSet&&) noexcept = default;

  std::size_t size() const noexcept { return columns_.empty() ? 0 : cells_.size() / columns_.size(); }
  bool empty() const noexcept { return size() == 0; }
  Row operator[](std::size_t row) const noexcept { return Row(*this, row); }
  Row at(std::size_t row) const;
  const std::vector<std::string>& columns() const noexcept { return columns_; }
  std::size_t column_index(std::string_view name) const;
  std::uint64_t affected_rows() const noexcept { return affected_rows_; }

  class Iterator {
   public:
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    Iterator(const ResultSet* result, std::size_t row) : result_(result), row_(row) {}
    Row operator*() const { return Row(*result_, row_); }
    Iterator& operator++() {
      ++row_;
      return *this;
    }
    bool operator==(const Iterator& other) const = default;

   private:
    const ResultSet* result_;
    std::size_t row_;
  };
  Iterator begin() const noexcept { return Iterator(this, 0); }
  Iterator end() const noexcept { return Iterator(this, size()); }

  // --- for drivers ----------------------------------------------------------

  void set_columns(std::vector<std::string> columns) { columns_ = std::move(columns); }
  void reserve_rows(std::size_t rows) { cells_.reserve(rows * columns_.size()); }
  /// Appends a cell whose bytes point into storage the ResultSet owns
  /// (keep_alive) or into `text_` (append_owned_bytes).
  void push_cell(const Cell& cell) { cells_.push_back(cell); }
  /// Copies bytes into the ResultSet's own buffer; returns their offset.
  /// Call finish_owned_bytes() once all cells are in.
  std::size_t append_owned_bytes(const void* data, std::size_t size);
  void finish_owned_bytes();
  /// Keeps a driver's result object (for example a PGresult) alive.
  void keep_alive(void* object, void (*release)(void*)) { owner_ = Owner(object, release); }
  void set_affected_rows(std::uint64_t rows) noexcept { affected_rows_ = rows; }
  const Cell& cell(std::size_t row, std::size_t column) const noexcept {
    return cells_[row * columns_.size() + column];
  }

 private:
  using Owner = std::unique_ptr<void, void (*)(void*)>;

  std::vector<std::string> columns_;
  std::vector<Cell> cells_;
  std::vector<char> owned_bytes_;
  Owner owner_{nullptr, [](void*) {}};
  std::uint64_t affected_rows_ = 0;
};

inline std::size_t Row::size() const noexcept { return result_->columns().size(); }

template <class T>
T Row::get(std::size_t column) const {
  const Cell& value = cell(column);
  if constexpr (detail::IsOptionalResult<T>::value) {
    if (value.type == Cell::Type::null) {
      return std::nullopt;
    }
    return get<typename detail::IsOptionalResult<T>::value_type>(column);
  } else {
    if (value.type == Cell::Type::null) {
      detail::throw_conversion_error(*result_, column, value, "a non-NULL value (read it as std::optional)");
    }
    if constexpr (std::is_same_v<T, bool>) {
      return detail::cell_to_bool(*result_, column, value);
    } else if constexpr (std::is_integral_v<T>) {
      const std::int64_t number = detail::cell_to_integer(*result_, column, value);
      if (!std::in_range<T>(number)) {
        detail::throw_conversion_error(*result_, column, value, "an integer in the range of the requested type");
      }
      return static_cast<T>(number);
    } else if constexpr (std::is_floating_point_v<T>) {
      return static_cast<T>(detail::cell_to_real(*result_, column, value));
    } else if constexpr (std::is_same_v<T, std::string>) {
      return detail::cell_to_string(*result_, column, value);
    } else if constexpr (std::is_same_v<T, std::string_view>) {
      if (value.type != Cell::Type::text && value.type != Cell::Type::blob) {
        detail::throw_conversion_error(*result_, column, value, "text");
      }
      return std::string_view(value.data, value.size);
    } else if constexpr (std::is_same_v<T, Blob>) {
      return detail::cell_to_blob(*result_, column, value);
    } else {
      static_assert(sizeof(T) == 0, "unsupported result type");
    }
  }
}

template <class T>
T Row::get(std::string_view name) const {
  return get<T>(result_->column_index(name));
}

}  // namespace sluice::db
