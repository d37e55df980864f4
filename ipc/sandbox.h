// File: ipc/sandbox.h
//
// A sandbox a process applies to itself once it holds the descriptors it
// needs: the lockdown of a privilege-separated worker (OpenSSH's sandboxed
// child, Chromium's renderers). Layer by layer, each as far as the running
// kernel allows:
//
//   1. identity: as root, setgroups/setresgid/setresuid to `user`, checked
//      with getresuid/getresgid afterwards (the bounding set is emptied
//      first, while that is still allowed);
//   2. no-new-privs: PR_SET_NO_NEW_PRIVS, so exec cannot gain privileges;
//   3. capabilities: every set emptied (effective, permitted, inheritable,
//      bounding, ambient);
//   4. resource limits: no new processes (RLIMIT_NPROC 0), no core dumps
//      (RLIMIT_CORE 0), a RLIMIT_NOFILE it cannot raise;
//   5. Landlock: filesystem access only beneath `read_only_paths` (none:
//      no path can be opened at all), no TCP bind or connect (ABI >= 4),
//      abstract UNIX sockets and signals scoped to the sandbox (ABI >= 6);
//   6. seccomp-bpf (Debian's libseccomp): an allowlist of system calls;
//      anything else fails with EPERM, kills the process, or is only
//      logged (to build a list).
//   Optionally, first: new network, IPC and UTS namespaces (unshare), where
//   the process may create them.
//
//   conet::ipc::SandboxPolicy policy = conet::ipc::WorkerSandbox();
//   policy.user = "nobody";
//   absl::StatusOr<conet::ipc::SandboxReport> report =
//       conet::ipc::ApplySandbox(policy, conet::ipc::SandboxMode::kBestEffort);
//   if (!report.ok()) return Fail(report.status());  // strict, or a bad policy
//   std::fprintf(stderr, "%s\n", report->ToString().c_str());
//
// Modes: kBestEffort applies what the kernel offers and reports the rest
// (never silently: the report names each layer it could not apply, and
// why); kStrict fails with FailedPreconditionError naming the first layer
// that could not be applied (the process is then partly sandboxed: exit);
// kOff applies nothing (for debugging). A policy the process cannot follow
// at all (a user that does not exist, a path that cannot be opened, a
// system call name libseccomp does not know) is an error in either mode.
//
// Under AddressSanitizer or LeakSanitizer, the leak check that would run at
// exit runs when the sandbox is applied instead: at exit it needs ptrace,
// a new process and /proc, all of which the sandbox refuses.
//
// Call it from the process's only thread, before it starts any: the
// identity (glibc applies it to every thread) and the limits are the
// process's, but no-new-privs, the capability sets and Landlock are the
// calling thread's and of the threads it starts later (seccomp is applied
// to every thread, SECCOMP_FILTER_FLAG_TSYNC). With no_new_processes, no
// thread can be started afterwards either: RLIMIT_NPROC counts threads
// (the CLONE_THREAD rule matters only with that limit off). A process that
// starts its threads after its sandbox (a LoopGroup's) leaves
// no_new_processes off and calls ForbidNewProcesses once they all run.
#ifndef CONET_IPC_SANDBOX_H_
#define CONET_IPC_SANDBOX_H_

#include <sys/resource.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace conet::ipc {

enum class SandboxMode { kOff, kBestEffort, kStrict };

// Parses `strict`, `best-effort` or `off` (the programs' --sandbox flag).
absl::StatusOr<SandboxMode> ParseSandboxMode(absl::string_view text);

// What a system call outside the allowlist gets.
enum class SeccompDenial {
  kErrno,  // fails with EPERM
  kKill,   // the process is killed (SIGSYS)
  kLog,    // runs, and the kernel logs it (audit): for building a list
};

struct SandboxPolicy {
  // As root: the user to become (its groups are dropped, its primary group
  // taken). Empty: keep the identity. Not root: ignored.
  std::string user;
  bool no_new_privs = true;
  bool drop_capabilities = true;
  // Resource limits (only ever lowered).
  bool no_new_processes = true;
  bool no_core_dumps = true;
  bool bound_open_files = true;
  // RLIMIT_NOFILE, soft and hard; 0: the soft limit as it is becomes the
  // hard one too, so the process cannot raise it.
  rlim_t max_open_files = 0;
  // Landlock.
  bool landlock = true;
  // Directories (or files) beneath which files may be read and directories
  // listed; nothing else of the filesystem is reachable. Opened (O_PATH)
  // before the sandbox; must exist.
  std::vector<std::string> read_only_paths;
  bool deny_tcp = true;                // no bind/connect on TCP (ABI >= 4)
  bool scope_abstract_sockets = true;  // no connecting out of the sandbox (ABI >= 6)
  bool scope_signals = true;           // no signals out of the sandbox (ABI >= 6)
  // seccomp-bpf.
  bool seccomp = true;
  // The allowlist, by name (as libseccomp spells them); see
  // EventLoopSystemCalls.
  std::vector<std::string> system_calls;
  SeccompDenial denial = SeccompDenial::kErrno;
  // New network, IPC and UTS namespaces (needs CAP_SYS_ADMIN, so root).
  // Off by default: descriptors already held keep working, but nothing
  // new can reach the host's network.
  bool unshare_namespaces = false;
};

// The system calls an event-loop worker on conet makes: the loop (epoll,
// eventfd, timerfd, signalfd), reads, writes and socket calls on
// descriptors it holds (accept4, recvmsg/sendmsg with descriptors,
// shutdown, sendfile), memory, time, futexes and threads (clone only with
// CLONE_THREAD), and exit. Some only with these arguments: ioctl only
// FIONBIO, FIONREAD, FIOCLEX, FIONCLEX and TCGETS (never TIOCSTI into an
// inherited terminal), prlimit64 only on itself, tgkill only its own
// threads. Kept current with conet's own
// calls: a test runs the loop, sockets and channel under this list.
std::vector<std::string> EventLoopSystemCalls();

// A policy for a worker that is handed every descriptor it needs: all
// layers on, no filesystem access, EventLoopSystemCalls.
SandboxPolicy WorkerSandbox();

// A policy with every layer off: set the ones wanted.
SandboxPolicy EmptySandbox();

// One layer's outcome.
struct SandboxLayer {
  enum class State { kEnforced, kLacking, kSkipped };
  std::string name;  // "identity", "no-new-privs", "capabilities", ...
  State state = State::kSkipped;
  std::string detail;  // what was enforced, or why it could not be
};

struct SandboxReport {
  std::vector<SandboxLayer> layers;
  // The Landlock ABI the kernel offers (0: none).
  int landlock_abi = 0;

  // True when no layer the policy asked for is lacking.
  bool complete() const;
  // One line: `sandbox: enforced identity (nobody), ...; lacking: landlock
  // (...)` (or `lacking: nothing`), or `sandbox: off`.
  std::string ToString() const;
};

// Applies `policy` to the calling process (see the top of this file).
absl::StatusOr<SandboxReport> ApplySandbox(const SandboxPolicy& policy, SandboxMode mode);

// Sets RLIMIT_NPROC to 0 (soft and hard), for a process whose policy left
// no_new_processes off because it starts threads after ApplySandbox (the
// limit counts them): call once every thread runs. Adds "nproc 0" to the
// report's limits layer. kStrict: a refusal is the error returned (and
// nothing is recorded); kBestEffort: it is recorded as lacking; kOff:
// nothing is done.
absl::Status ForbidNewProcesses(SandboxMode mode, SandboxReport* report);

// The Landlock ABI version the kernel offers; 0 when it has none (or
// Landlock is disabled).
int LandlockAbi();

}  // namespace conet::ipc

#endif  // CONET_IPC_SANDBOX_H_
