#include "redis_test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace sluice::redis::testing {
int unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return 0;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

std::string shared_redis_url() {
  const char* url = std::getenv("SLUICE_TEST_REDIS_URL");
  return url != nullptr ? url : "";
}

bool services_required() {
  const char* required = std::getenv("SLUICE_REQUIRE_SERVICES");
  return required != nullptr && std::string(required) == "1";
}

std::string key_prefix() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr ? std::string(info->test_suite_name()) + "." + info->name() : "unknown";
  return "sluice-redis-test:" + std::to_string(::getpid()) + ":" + name + ":";
}

PrivateRedis::PrivateRedis() {
  char pattern[] = "/tmp/sluice-redis-test.XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = pattern;
  port_ = unused_port();
  if (port_ == 0) {
    error_ = "no free port found";
    return;
  }
  control("start");
}

PrivateRedis::~PrivateRedis() {
  if (!dir_.empty()) {
    if (pid_t server = pid(); server > 0) {
      ::kill(server, SIGCONT);
    }
    control("stop");
    std::string remove = "rm -rf '" + dir_ + "'";
    [[maybe_unused]] int ignored = std::system(remove.c_str());
  }
}

std::string PrivateRedis::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_);
}

pid_t PrivateRedis::pid() const {
  std::ifstream file(dir_ + "/redis.pid");
  pid_t value = 0;
  file >> value;
  return value;
}

bool PrivateRedis::restart() {
  return control("restart");
}

bool PrivateRedis::control(const std::string& action) {
  std::string command = std::string("'") + SLUICE_REDIS_SERVER_SCRIPT + "' " + action + " '" + dir_ + "' " +
                        std::to_string(port_) + " >>'" + dir_ + "/control.log' 2>&1";
  int status = std::system(command.c_str());
  if (status != 0) {
    error_ = "redis-server.sh " + action + " failed with status " + std::to_string(status) + "; see " + dir_ +
             "/control.log";
    return false;
  }
  return true;
}

PauseGuard::PauseGuard(pid_t pid) : pid_(pid) {
  if (pid_ > 0 && ::kill(pid_, SIGSTOP) == 0) {
    paused_ = true;
  }
}

PauseGuard::~PauseGuard() {
  resume();
}

void PauseGuard::resume() {
  if (paused_) {
    ::kill(pid_, SIGCONT);
    paused_ = false;
  }
}

}  // namespace sluice::redis::testing
