#include <sluice/db/result.hpp>

#include <charconv>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace sluice::db {
namespace {

// Values longer than this are cut in error messages.
constexpr std::size_t kMaxValueInMessage = 40;

std::string_view type_name(Cell::Type type) {
  switch (type) {
    case Cell::Type::null:
      return "NULL";
    case Cell::Type::integer:
      return "integer";
    case Cell::Type::real:
      return "real";
    case Cell::Type::text:
      return "text";
    case Cell::Type::blob:
    case Cell::Type::hex_blob:
      return "blob";
  }
  return "unknown";
}

std::string_view text_of(const Cell& cell) { return std::string_view(cell.data, cell.size); }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

Row ResultSet::at(std::size_t row) const {
  if (row >= size()) {
    throw ResultError(fmt::format("row {} is out of range: the result has {} rows", row, size()));
  }
  return Row(*this, row);
}

std::size_t ResultSet::column_index(std::string_view name) const {
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i] == name) {
      return i;
    }
  }
  throw ResultError(fmt::format("column `{}` not found; the result has columns [{}]", name,
                                fmt::join(columns_, ", ")));
}

std::size_t ResultSet::append_owned_bytes(const void* data, std::size_t size) {
  const auto offset = owned_bytes_.size();
  const auto* bytes = static_cast<const char*>(data);
  owned_bytes_.insert(owned_bytes_.end(), bytes, bytes + size);
  return offset;
}

// Cells of owned bytes store their offset in `data` until the buffer stops
// growing; this turns offsets into pointers.
void ResultSet::finish_owned_bytes() {
  for (auto& cell : cells_) {
    if ((cell.type == Cell::Type::text || cell.type == Cell::Type::blob) && cell.data == nullptr) {
      cell.data = owned_bytes_.data() + cell.integer;
      cell.integer = 0;
    }
  }
}

bool Row::is_null(std::size_t column) const { return cell(column).type == Cell::Type::null; }

const Cell& Row::cell(std::size_t column) const {
  if (column >= result_->columns().size()) {
    throw ResultError(fmt::format("column {} is out of range: the result has {} columns", column,
                                  result_->columns().size()));
  }
  return result_->cell(index_, column);
}

namespace detail {

void throw_conversion_error(const ResultSet& result, std::size_t column, const Cell& cell, std::string_view wanted) {
  std::string value;
  switch (cell.type) {
    case Cell::Type::null:
      value = "NULL";
      break;
    case Cell::Type::integer:
      value = std::to_string(cell.integer);
      break;
    case Cell::Type::real:
      value = fmt::format("{}", cell.real);
      break;
    case Cell::Type::text:
      value = std::string(text_of(cell).substr(0, kMaxValueInMessage));
      break;
    case Cell::Type::blob:
    case Cell::Type::hex_blob:
      value = fmt::format("{} bytes", cell.size);
      break;
  }
  throw ResultError(fmt::format("column `{}` (index {}) contains {} `{}`, expected {}", result.columns()[column],
                                column, type_name(cell.type), value, wanted));
}

std::int64_t cell_to_integer(const ResultSet& result, std::size_t column, const Cell& cell) {
  if (cell.type == Cell::Type::integer) {
    return cell.integer;
  }
  if (cell.type == Cell::Type::text) {
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(cell.data, cell.data + cell.size, value);
    if (error == std::errc{} && end == cell.data + cell.size) {
      return value;
    }
  }
  throw_conversion_error(result, column, cell, "an integer");
}

double cell_to_real(const ResultSet& result, std::size_t column, const Cell& cell) {
  if (cell.type == Cell::Type::real) {
    return cell.real;
  }
  if (cell.type == Cell::Type::integer) {
    return static_cast<double>(cell.integer);
  }
  if (cell.type == Cell::Type::text) {
    double value = 0;
    const auto [end, error] = std::from_chars(cell.data, cell.data + cell.size, value);
    if (error == std::errc{} && end == cell.data + cell.size) {
      return value;
    }
  }
  throw_conversion_error(result, column, cell, "a number");
}

bool cell_to_bool(const ResultSet& result, std::size_t column, const Cell& cell) {
  if (cell.type == Cell::Type::integer) {
    return cell.integer != 0;
  }
  if (cell.type == Cell::Type::text) {
    const auto text = text_of(cell);
    if (text == "t" || text == "true") {
      return true;
    }
    if (text == "f" || text == "false") {
      return false;
    }
  }
  throw_conversion_error(result, column, cell, "a boolean");
}

Blob cell_to_blob(const ResultSet& result, std::size_t column, const Cell& cell) {
  if (cell.type == Cell::Type::blob || cell.type == Cell::Type::text) {
    const auto* bytes = reinterpret_cast<const std::byte*>(cell.data);
    return Blob(bytes, bytes + cell.size);
  }
  if (cell.type == Cell::Type::hex_blob) {
    // PostgreSQL's bytea text output: "\x" followed by two hex digits a byte.
    const auto text = text_of(cell);
    if (text.size() >= 2 && text[0] == '\\' && text[1] == 'x' && text.size() % 2 == 0) {
      Blob blob;
      blob.reserve((text.size() - 2) / 2);
      bool valid = true;
      for (std::size_t i = 2; i < text.size(); i += 2) {
        const int high = hex_digit(text[i]);
        const int low = hex_digit(text[i + 1]);
        if (high < 0 || low < 0) {
          valid = false;
          break;
        }
        blob.push_back(static_cast<std::byte>(high * 16 + low));
      }
      if (valid) {
        return blob;
      }
    }
  }
  throw_conversion_error(result, column, cell, "a blob");
}

std::string cell_to_string(const ResultSet& result, std::size_t column, const Cell& cell) {
  switch (cell.type) {
    case Cell::Type::text:
    case Cell::Type::blob:
    case Cell::Type::hex_blob:
      return std::string(text_of(cell));
    case Cell::Type::integer:
      return std::to_string(cell.integer);
    case Cell::Type::real:
      return fmt::format("{}", cell.real);
    case Cell::Type::null:
      break;
  }
  throw_conversion_error(result, column, cell, "text");
}

}  // namespace detail
}  // namespace sluice::db
