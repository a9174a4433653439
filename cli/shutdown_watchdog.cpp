#include "cli/shutdown_watchdog.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace sbm::cli::shutdown_watchdog {

namespace {

std::atomic<const char*> current_step{"stopping"};
std::atomic<bool> armed{false};

void put(const char* text, std::size_t size) {
  while (size > 0) {
    const auto n = ::write(STDERR_FILENO, text, size);
    if (n <= 0)
      return;
    text += n;
    size -= static_cast<std::size_t>(n);
  }
}

void put(const char* text) { put(text, std::strlen(text)); }

void put_number(long value) {
  char digits[24];
  std::size_t at = sizeof digits;
  do {
    digits[--at] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && at > 0);
  put(digits + at, sizeof digits - at);
}

// /proc/self/task/<tid>/<name> without its trailing newline.
void put_task_file(const char* tid, const char* name) {
  char path[96] = "/proc/self/task/";
  std::strncat(path, tid, 24);
  std::strcat(path, "/");
  std::strcat(path, name);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return put("?");
  char text[64];
  const auto n = ::read(fd, text, sizeof text);
  ::close(fd);
  std::size_t size = n > 0 ? static_cast<std::size_t>(n) : 0;
  while (size > 0 && (text[size - 1] == '\n' || text[size - 1] == '\0'))
    --size;
  put(text, size);
}

// Every thread but this one, as "name (where the kernel holds it)".
void put_threads() {
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr)
    return put("?");
  const auto self = static_cast<long>(::gettid());
  bool first = true;
  while (const dirent* entry = ::readdir(tasks)) {
    if (entry->d_name[0] == '.' || std::atol(entry->d_name) == self)
      continue;
    if (!first)
      put(", ");
    first = false;
    put_task_file(entry->d_name, "comm");
    put(" (");
    put_task_file(entry->d_name, "wchan");
    put(")");
  }
  ::closedir(tasks);
}

}  // namespace

void arm(std::chrono::steady_clock::time_point deadline, int code) {
  if (armed.exchange(true))
    return;
  std::thread([deadline, code] {
    std::this_thread::sleep_until(deadline);
    put("sbm node: the stop did not finish by its deadline (gateway.drain-timeout), still at: ");
    put(current_step.load());
    put("; threads left: ");
    put_threads();
    put("; exiting with code ");
    put_number(code);
    put("\n");
    std::_Exit(code);
  }).detach();
}

void step(const char* what) { current_step.store(what); }

}  // namespace sbm::cli::shutdown_watchdog
