#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sluice::telegram::test {

/// Reads tests/data/<relative_path> whole.
inline std::string read_test_data(std::string_view relative_path) {
  const std::string path = std::string(SLUICE_TEST_DATA_DIR) + "/" + std::string(relative_path);
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    throw std::runtime_error("cannot open test data file " + path);
  }
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

}  // namespace sluice::telegram::test
