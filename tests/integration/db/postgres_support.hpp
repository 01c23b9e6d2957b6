#pragma once

// Helpers for tests against the PostgreSQL server that
// scripts/with-services.sh starts.

#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::db::testing {

inline std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return std::nullopt;
  }
  return std::string(value);
}

inline bool services_required() { return env("SLUICE_REQUIRE_SERVICES") == std::optional<std::string>("1"); }

/// Reads SLUICE_TEST_POSTGRES_URL, or fails (SLUICE_REQUIRE_SERVICES=1) or
/// skips the test.
#define SLUICE_REQUIRE_POSTGRES(variable)                                                      \
  const auto variable##_value = ::sluice::db::testing::env("SLUICE_TEST_POSTGRES_URL");        \
  if (!variable##_value) {                                                                     \
    if (::sluice::db::testing::services_required()) {                                          \
      FAIL() << "SLUICE_TEST_POSTGRES_URL is not set; run under scripts/with-services.sh";     \
    }                                                                                          \
    GTEST_SKIP() << "SLUICE_TEST_POSTGRES_URL is not set; run under scripts/with-services.sh"; \
  }                                                                                            \
  const std::string variable = *variable##_value

/// Runs a pg_ctl command against the test server (as the postgres user when
/// running as root); returns its exit status.
inline int pg_ctl(const std::string& arguments) {
  const auto bin = env("SLUICE_TEST_POSTGRES_BIN").value_or("/usr/lib/postgresql/15/bin");
  const auto data = env("SLUICE_TEST_POSTGRES_DATA").value_or("");
  std::string command = bin + "/pg_ctl -D " + data + " " + arguments + " >/dev/null 2>&1";
  if (::geteuid() == 0) {
    command = "runuser -u postgres -- " + command;
  }
  return std::system(command.c_str());
}

/// Returns the postmaster's pid, from the first line of postmaster.pid.
inline pid_t postmaster_pid() {
  std::ifstream file(env("SLUICE_TEST_POSTGRES_DATA").value_or("") + "/postmaster.pid");
  pid_t pid = 0;
  file >> pid;
  return pid;
}

/// Returns the postmaster and its child processes (backends, background workers).
inline std::vector<pid_t> server_processes() {
  const pid_t parent = postmaster_pid();
  std::vector<pid_t> pids;
  if (parent <= 0) {
    return pids;
  }
  pids.push_back(parent);
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return pids;
  }
  while (dirent* entry = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0) {
      continue;
    }
    std::ifstream stat("/proc/" + std::string(entry->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the command name (which may hold spaces): state ppid ...
    const auto close = line.rfind(')');
    if (close == std::string::npos) {
      continue;
    }
    char state = 0;
    pid_t ppid = 0;
    std::istringstream rest(line.substr(close + 1));
    rest >> state >> ppid;
    if (ppid == parent) {
      pids.push_back(pid);
    }
  }
  ::closedir(proc);
  return pids;
}

/// Stops (SIGSTOP) the server and its children, so that it accepts TCP but
/// never responds; the destructor always resumes them (SIGCONT).
class ServerFreeze {
 public:
  ServerFreeze() : pids_(server_processes()) {
    for (pid_t pid : pids_) {
      ::kill(pid, SIGSTOP);
    }
  }
  ServerFreeze(const ServerFreeze&) = delete;
  ServerFreeze& operator=(const ServerFreeze&) = delete;
  ~ServerFreeze() { resume(); }

  void resume() {
    for (pid_t pid : pids_) {
      ::kill(pid, SIGCONT);
    }
    pids_.clear();
  }
  std::size_t size() const { return pids_.size(); }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace sluice::db::testing
