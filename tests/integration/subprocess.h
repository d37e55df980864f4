// File: tests/integration/subprocess.h
//
// Subprocess runs one of conet's programs for an end-to-end test: it starts
// the binary (from the test's runfiles), waits for its `listening on
// ADDRESS` line, and later signals it and collects its exit status. Every
// wait has a deadline; the destructor kills a process still running.
#ifndef CONET_TESTS_INTEGRATION_SUBPROCESS_H_
#define CONET_TESTS_INTEGRATION_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/socket_address.h"

namespace conet::test {

// Returns the path of `target_path` (e.g. "examples/echo_server") in the
// test's runfiles.
std::string RunfilePath(const std::string& target_path);

class Subprocess {
 public:
  // Starts `argv` (argv[0] a path) with stdout on a pipe and stderr in a
  // file. A `max_fds` above 0 lowers the child's RLIMIT_NOFILE first.
  static absl::StatusOr<Subprocess> Start(std::vector<std::string> argv, int max_fds = 0);
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  // Kills (SIGKILL) and reaps the process if it still runs.
  ~Subprocess();

  // Reads stdout until `listening on ADDRESS` and returns ADDRESS.
  absl::StatusOr<std::string> WaitListening(absl::Duration timeout = absl::Seconds(10));
  // Reads stdout until a whole line starting with `prefix` and returns the
  // rest of it ("ACCEPT" from openssl s_server, say).
  absl::StatusOr<std::string> WaitForLine(const std::string& prefix,
                                          absl::Duration timeout = absl::Seconds(10));
  // Sends `signal` and waits for the exit; returns the exit status, or an
  // error if it died from a signal or did not exit in time.
  absl::StatusOr<int> Stop(int signal, absl::Duration timeout = absl::Seconds(10));
  // Returns the CPU time (user + system) the process has used so far.
  absl::StatusOr<absl::Duration> CpuTime() const;
  // Returns what the process wrote to stderr so far.
  std::string Stderr() const;
  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, int stdout_fd, std::string stderr_path)
      : pid_(pid), stdout_fd_(stdout_fd), stderr_path_(std::move(stderr_path)) {}

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stderr_path_;
  std::string stdout_seen_;
};

// A program that printed its `listening on ADDRESS` line.
struct ListeningProcess {
  Subprocess process;
  SocketAddress address;
};

// Starts `argv` (see Subprocess::Start) and waits for its `listening on`
// line; a failure fails the current test and aborts it (with the
// program's stderr), since nothing after it could run.
ListeningProcess StartListening(std::vector<std::string> argv, int max_fds = 0);

// Returns the value of `key` in /proc/`pid`/status ("Uid", "NoNewPrivs"),
// or of thread `tid`'s status with a tid; "" if absent.
std::string ProcStatusField(pid_t pid, const std::string& key);
std::string ProcStatusField(pid_t pid, pid_t tid, const std::string& key);

// Returns the ids of the threads of process `pid`.
std::vector<pid_t> ThreadsOf(pid_t pid);

}  // namespace conet::test

#endif  // CONET_TESTS_INTEGRATION_SUBPROCESS_H_
