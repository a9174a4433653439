// The stopping node's watchdog ends a process stuck in its stop, and only then. Each case runs in
// a forked child (the watchdog ends the whole process); the parent waits for the child's exit with
// a generous bound, so a watchdog that never fires fails the test instead of hanging it.
#include "cli/shutdown_watchdog.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
namespace watchdog = sbm::cli::shutdown_watchdog;

struct outcome {
  bool exited = false;  // false: still running at the bound, then killed
  int code = -1;
  std::string stderr_text;
};

// Runs `body` in a child whose stderr is captured, and waits up to `bound` for it to end.
template <class Body>
outcome run_child(Body body, std::chrono::seconds bound = 60s) {
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::dup2(out[1], STDERR_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    body();
    ::_exit(0);
  }
  ::close(out[1]);
  outcome result;
  std::thread reader([&] {
    char buffer[512];
    for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;)
      result.stderr_text.append(buffer, static_cast<std::size_t>(n));
  });
  int status = 0;
  const auto give_up = std::chrono::steady_clock::now() + bound;
  pid_t done = 0;
  while ((done = ::waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(20ms);
  if (done == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  } else {
    result.exited = WIFEXITED(status);
    result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  reader.join();
  ::close(out[0]);
  return result;
}

// A thread that never ends, joined: what a destructor waiting for a stuck thread does.
[[noreturn]] void hang_in_join() {
  std::thread stuck([] {
    ::pthread_setname_np(::pthread_self(), "sbm.stuck");
    std::mutex m;
    std::condition_variable never;
    std::unique_lock<std::mutex> guard{m};
    never.wait(guard, [] { return false; });
  });
  stuck.join();
  std::abort();  // unreachable: the join never returns
}

TEST(ShutdownWatchdog, EndsAStopStuckPastItsDeadlineWithTheStopsCodeAndSaysWhere) {
  const auto r = run_child([] {
    watchdog::arm(std::chrono::steady_clock::now() + 200ms, 7);
    watchdog::step("joining a thread that never ends");
    hang_in_join();
  });
  ASSERT_TRUE(r.exited) << "the watchdog never ended the stuck process; stderr: " << r.stderr_text;
  EXPECT_EQ(r.code, 7);
  EXPECT_NE(r.stderr_text.find("still at: joining a thread that never ends"), std::string::npos) << r.stderr_text;
  // The thread it waited for is named, with where the kernel holds it.
  EXPECT_NE(r.stderr_text.find("sbm.stuck ("), std::string::npos) << r.stderr_text;
}

TEST(ShutdownWatchdog, TheLastStepSetBeforeTheHangIsTheOneNamed) {
  const auto r = run_child([] {
    watchdog::arm(std::chrono::steady_clock::now() + 200ms, 0);
    {
      watchdog::step_on_destruction marker{"after the marker's scope"};
      watchdog::step("inside the marker's scope");
    }
    hang_in_join();
  });
  ASSERT_TRUE(r.exited) << r.stderr_text;
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.stderr_text.find("still at: after the marker's scope"), std::string::npos) << r.stderr_text;
}

TEST(ShutdownWatchdog, AStopThatFinishesEndsAtOnceWithItsOwnCodeAndNoLine) {
  // Armed far in the future: the process must not wait for it, nor print anything.
  const auto r = run_child([] {
    watchdog::arm(std::chrono::steady_clock::now() + 1h, 9);
    watchdog::step("never reported");
    ::exit(4);
  });
  ASSERT_TRUE(r.exited) << "the armed watchdog kept a finished process alive";
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(r.stderr_text, "");
}

TEST(ShutdownWatchdog, ArmsOnceTheFirstDeadlineHolds) {
  const auto r = run_child([] {
    watchdog::arm(std::chrono::steady_clock::now() + 200ms, 5);
    watchdog::arm(std::chrono::steady_clock::now() + 1h, 6);
    hang_in_join();
  });
  ASSERT_TRUE(r.exited) << r.stderr_text;
  EXPECT_EQ(r.code, 5);
}

}  // namespace
