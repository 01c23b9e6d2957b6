#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <utility>
#include <vector>

namespace sluice::sandbox {

/// Sorts `items` by `less`, keeping equal items in their order, like
/// std::stable_sort. It avoids std::stable_sort because libstdc++ 12
/// implements it with std::get_temporary_buffer, which clang 19 reports as
/// deprecated.
template <class T, class Less>
void stable_sort_items(std::vector<T>& items, Less less) {
  // Most lists (the entities of one message) are already in order, and
  // sorting them would only allocate.
  if (std::is_sorted(items.begin(), items.end(), less)) {
    return;
  }
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (less(items[a], items[b])) {
      return true;
    }
    if (less(items[b], items[a])) {
      return false;
    }
    return a < b;
  });
  std::vector<T> sorted;
  sorted.reserve(items.size());
  for (auto index : order) {
    sorted.push_back(std::move(items[index]));
  }
  items = std::move(sorted);
}

}  // namespace sluice::sandbox
