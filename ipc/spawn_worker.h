// File: ipc/spawn_worker.h
//
// SpawnWorker starts a child process for privilege separation: the parent
// (the monitor) keeps one end of a SOCK_SEQPACKET socketpair, the child
// gets the other as descriptor 3 (blocking, as inherited descriptors
// usually are), announced in CONET_WORKER_FD=3. The child gets exactly the
// descriptors it is given: standard input, output and error, the channel,
// and the caller's WorkerOptions::fds from 4 on; every other descriptor is
// closed in the child, even one the parent itself inherited without
// close-on-exec (a shell's `exec 7</secret`). Its environment is exactly
// WorkerOptions::environment plus CONET_WORKER_FD: nothing of the parent's
// (NOTIFY_SOCKET, credentials in variables) leaks unless the caller passes
// it. The parent awaits the child's exit through a pidfd.
//
//   // Monitor: run this same binary in its worker role.
//   absl::StatusOr<conet::ipc::Worker> worker = conet::ipc::SpawnWorker(
//       {conet::ipc::SelfExecutable(), "--worker"},
//       {.environment = conet::ipc::InheritEnvironment({"TZ", "LANG"})});
//   conet::ipc::Channel channel(std::move(worker->channel()));
//   ...
//   absl::StatusOr<int> exit_status = co_await worker->Wait();
//
//   // Worker (in main, before anything else opens descriptors):
//   absl::StatusOr<conet::UniqueFd> fd = conet::ipc::WorkerChannelFd();
#ifndef CONET_IPC_SPAWN_WORKER_H_
#define CONET_IPC_SPAWN_WORKER_H_

#include <sys/resource.h>
#include <sys/types.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ipc/unix_socket.h"
#include "net/async_fd.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::ipc {

// The environment variable naming the worker's channel descriptor.
inline constexpr char kWorkerFdVariable[] = "CONET_WORKER_FD";

struct WorkerOptions {
  // The child's environment, "NAME=value" entries (CONET_WORKER_FD is
  // added). Empty by default: the child sees none of the parent's variables.
  std::vector<std::string> environment;
  // Descriptors of the caller's (still open, still the caller's) that the
  // child gets at 4, 5, ... in this order, without close-on-exec.
  std::vector<int> fds;
  // What the child does to itself before the worker's program runs (between
  // fork and exec), so the worker's code never runs without it:
  // The signal the child gets when the thread that spawned it ends
  // (PR_SET_PDEATHSIG; the kernel's rule is the thread, not the process:
  // spawn from a thread that lives as long as the monitor). 0: none. A
  // parent that is already gone when the child starts is the same event.
  int parent_death_signal = 0;
  // Resource limits, each set soft and hard (RLIMIT_NOFILE, RLIMIT_CORE,
  // RLIMIT_NPROC, ...): (resource, value) pairs.
  std::vector<std::pair<int, rlim_t>> limits;
  // PR_SET_NO_NEW_PRIVS: the worker (and whatever it executes) can never
  // gain privileges through setuid binaries or file capabilities.
  bool no_new_privs = false;
  // (The rest of a sandbox, Landlock and seccomp, needs the worker to hold
  // its descriptors first and would have to allow the exec itself: the
  // worker applies them, with ipc::ApplySandbox in ipc/sandbox.h.)
};

class Worker {
 public:
  Worker(Worker&& other) noexcept;
  // Kills and reaps the child this Worker held, then takes `other`'s.
  Worker& operator=(Worker&& other) noexcept;
  // Kills (SIGKILL) and reaps a child that was not waited for, so no
  // zombie is left behind.
  ~Worker();

  [[nodiscard]] pid_t pid() const { return pid_; }
  // The parent's end of the seqpacket socketpair.
  UnixSocket& channel() { return channel_; }
  // Sends `signal` to the child (through its pidfd: never another process).
  absl::Status Kill(int signal);
  // Waits for the child to end. co_await yields its exit status (0-255), or
  // 128 + N if signal N ended it, or the error. Call once.
  Task<absl::StatusOr<int>> Wait(Cancellation cancel = {});

 private:
  // Kills and reaps the child if it was not waited for.
  void Reap() noexcept;
  friend absl::StatusOr<Worker> SpawnWorker(std::vector<std::string> argv, WorkerOptions options,
                                            EventLoop* loop);
  Worker(pid_t pid, AsyncFd pidfd, UnixSocket channel)
      : pid_(pid), pidfd_(std::move(pidfd)), channel_(std::move(channel)) {}

  pid_t pid_ = -1;
  AsyncFd pidfd_;
  UnixSocket channel_;
};

// Starts `argv` (argv[0] the program's path, not searched in PATH) with the
// worker's end of a seqpacket socketpair as descriptor 3, the parent's end
// registered with `loop` (null: the current loop). The child starts with no
// signal blocked and SIGINT, SIGTERM, SIGPIPE and SIGHUP at their default
// actions. Refuses an environment entry without '=' (InvalidArgument).
absl::StatusOr<Worker> SpawnWorker(std::vector<std::string> argv, WorkerOptions options = {},
                                   EventLoop* loop = nullptr);

// Returns "NAME=value" for each of `names` set in this process's
// environment, in the order given, for WorkerOptions::environment.
std::vector<std::string> InheritEnvironment(std::initializer_list<absl::string_view> names);

// Returns this process's executable (/proc/self/exe resolved), to spawn
// the same binary in a worker role.
std::string SelfExecutable();

// In the worker: takes the channel descriptor named by CONET_WORKER_FD,
// marks it close-on-exec and removes the variable. NotFoundError if this
// process was not started by SpawnWorker.
absl::StatusOr<UniqueFd> WorkerChannelFd();

}  // namespace conet::ipc

#endif  // CONET_IPC_SPAWN_WORKER_H_
