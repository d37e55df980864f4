#include "ipc/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "net/unique_fd.h"

// LeakSanitizer's check at exit stops the world with a ptrace-ing clone
// and reads /proc/self/maps: a sandboxed process may do none of it.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define CONET_LEAK_SANITIZER 1
#endif
#endif
#if !defined(CONET_LEAK_SANITIZER) && defined(__SANITIZE_ADDRESS__)
#define CONET_LEAK_SANITIZER 1
#endif
#ifdef CONET_LEAK_SANITIZER
#include <sanitizer/lsan_interface.h>
#endif

namespace conet::ipc {
namespace {

using State = SandboxLayer::State;

// Landlock's interface beyond the kernel headers Debian 12 ships (6.1,
// ABI 2): the values are the kernel's (include/uapi/linux/landlock.h).
constexpr uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
constexpr uint64_t kFsIoctlDev = 1ULL << 15;  // ABI 5
constexpr uint64_t kNetBindTcp = 1ULL << 0;   // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;
constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;

struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

std::string ErrnoText(int error) { return std::strerror(error); }

// What the calling process may do; all of its layers, in order.
class Sandboxer {
 public:
  Sandboxer(const SandboxPolicy& policy, SandboxMode mode) : policy_(policy), mode_(mode) {}

  absl::StatusOr<SandboxReport> Apply();

 private:
  // Records a layer; in strict mode a lacking one is the error returned.
  absl::Status Record(std::string name, State state, std::string detail);
  absl::Status Namespaces();
  absl::Status DropBoundingSet();
  absl::Status OpenPaths();
  absl::Status Identity();
  absl::Status NoNewPrivs();
  absl::Status Capabilities();
  absl::Status Limits();
  absl::Status Landlock();
  absl::Status Seccomp();

  const SandboxPolicy& policy_;
  SandboxMode mode_;
  SandboxReport report_;
  std::string bounding_lacking_;   // why the bounding set could not be emptied
  std::vector<UniqueFd> beneath_;  // read_only_paths, opened by OpenPaths
};

absl::Status Sandboxer::Record(std::string name, State state, std::string detail) {
  if (state == State::kLacking && mode_ == SandboxMode::kStrict) {
    return absl::FailedPreconditionError(
        absl::StrCat("sandbox (strict): ", name, " could not be applied: ", detail));
  }
  report_.layers.push_back(SandboxLayer{std::move(name), state, std::move(detail)});
  return absl::OkStatus();
}

absl::StatusOr<SandboxReport> Sandboxer::Apply() {
  report_.landlock_abi = LandlockAbi();
  if (mode_ == SandboxMode::kOff) return report_;
#ifdef CONET_LEAK_SANITIZER
  // The leak check runs now, while it can, instead of at exit (where it
  // would fail, or be killed by seccomp). Leaks made later go unseen.
  __lsan_do_leak_check();
#endif
  // The order the kernel needs: namespaces and the bounding set while
  // still privileged, Landlock after no-new-privs, seccomp last (it would
  // refuse the calls that apply the others).
  for (absl::Status (Sandboxer::*step)() :
       {&Sandboxer::Namespaces, &Sandboxer::DropBoundingSet, &Sandboxer::OpenPaths,
        &Sandboxer::Identity, &Sandboxer::NoNewPrivs, &Sandboxer::Capabilities, &Sandboxer::Limits,
        &Sandboxer::Landlock, &Sandboxer::Seccomp}) {
    if (absl::Status done = (this->*step)(); !done.ok()) return done;
  }
  return report_;
}

absl::Status Sandboxer::Namespaces() {
  if (!policy_.unshare_namespaces) return absl::OkStatus();
  if (::unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
    return Record("namespaces", State::kLacking, absl::StrCat("unshare: ", ErrnoText(errno)));
  }
  return Record("namespaces", State::kEnforced, "network, IPC, UTS");
}

// The highest capability number the kernel knows.
int LastCapability() {
  std::ifstream file("/proc/sys/kernel/cap_last_cap");
  std::string text;
  int last = 0;
  if (std::getline(file, text) && absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &last)) {
    return last;
  }
  return CAP_LAST_CAP;
}

absl::Status Sandboxer::DropBoundingSet() {
  if (!policy_.drop_capabilities) return absl::OkStatus();
  for (int cap = 0; cap <= LastCapability(); ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      bounding_lacking_ = absl::StrCat("bounding set: PR_CAPBSET_DROP: ", ErrnoText(errno));
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status Sandboxer::OpenPaths() {
  if (!policy_.landlock) return absl::OkStatus();
  // Before the identity changes: the new user may not reach them. A policy
  // naming one that is not there is an error.
  for (const std::string& path : policy_.read_only_paths) {
    UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd.is_open()) {
      return absl::ErrnoToStatus(errno, absl::StrCat("sandbox: open ", path, " for Landlock"));
    }
    beneath_.push_back(std::move(fd));
  }
  return absl::OkStatus();
}

absl::Status Sandboxer::Identity() {
  if (policy_.user.empty() || ::geteuid() != 0) {
    return Record("identity", State::kSkipped,
                  policy_.user.empty() ? "no user asked" : "not root: kept");
  }
  passwd entry;
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(policy_.user.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return absl::NotFoundError(absl::StrCat("sandbox: no user \"", policy_.user, "\""));
  }
  const uid_t uid = found->pw_uid;
  const gid_t gid = found->pw_gid;
  // Changing identity clears the parent-death signal (the kernel's rule):
  // whatever SpawnWorker armed is armed again afterwards.
  int death_signal = 0;
  ::prctl(PR_GET_PDEATHSIG, &death_signal, 0, 0, 0);
  if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
      ::setresuid(uid, uid, uid) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("sandbox: become ", policy_.user));
  }
  if (death_signal != 0 && ::prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0) {
    return absl::ErrnoToStatus(errno, "sandbox: PR_SET_PDEATHSIG after the identity change");
  }
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0 ||
      ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid ||
      ::getgroups(0, nullptr) != 0) {
    return absl::InternalError(
        absl::StrCat("sandbox: still not only ", policy_.user, " after setresuid"));
  }
  if (uid != 0 && ::setuid(0) == 0) {
    return absl::InternalError("sandbox: could regain root after dropping it");
  }
  return Record("identity", State::kEnforced,
                absl::StrCat(policy_.user, " uid ", uid, " gid ", gid));
}

absl::Status Sandboxer::NoNewPrivs() {
  if (!policy_.no_new_privs) return absl::OkStatus();
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return Record("no-new-privs", State::kLacking, ErrnoText(errno));
  }
  return Record("no-new-privs", State::kEnforced, "");
}

absl::Status Sandboxer::Capabilities() {
  if (!policy_.drop_capabilities) return absl::OkStatus();
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, data) != 0) {
    return Record("capabilities", State::kLacking, absl::StrCat("capset: ", ErrnoText(errno)));
  }
  // Not in every kernel's vocabulary (EINVAL before 4.3): nothing to clear.
  (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (!bounding_lacking_.empty()) {
    return Record("capabilities", State::kLacking, bounding_lacking_);
  }
  return Record("capabilities", State::kEnforced, "all sets empty");
}

absl::Status Sandboxer::Limits() {
  std::vector<std::string> set;
  auto limit = [&](int resource, rlim_t value, const char* name) -> absl::Status {
    rlimit current{};
    if (::getrlimit(resource, &current) != 0) {
      return Record("limits", State::kLacking, absl::StrCat(name, ": ", ErrnoText(errno)));
    }
    // Lower only: raising the hard limit back is not allowed, nor wanted.
    const rlim_t bounded = current.rlim_max < value ? current.rlim_max : value;
    const rlimit wanted{bounded, bounded};
    if (::setrlimit(resource, &wanted) != 0) {
      return Record("limits", State::kLacking, absl::StrCat(name, ": ", ErrnoText(errno)));
    }
    set.push_back(absl::StrCat(name, " ", bounded));
    return absl::OkStatus();
  };
  absl::Status done = absl::OkStatus();
  if (policy_.no_new_processes) done.Update(limit(RLIMIT_NPROC, 0, "nproc"));
  if (policy_.no_core_dumps) done.Update(limit(RLIMIT_CORE, 0, "core"));
  if (policy_.bound_open_files) {
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    const rlim_t wanted = policy_.max_open_files > 0 ? policy_.max_open_files : files.rlim_cur;
    done.Update(limit(RLIMIT_NOFILE, wanted, "nofile"));
  }
  if (!done.ok()) return done;
  if (set.empty()) return absl::OkStatus();
  return Record("limits", State::kEnforced, absl::StrJoin(set, ", "));
}

// Every filesystem right the kernel's ABI knows.
uint64_t HandledFsAccess(int abi) {
  uint64_t access = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // ABI 1
  if (abi >= 2) access |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) access |= kFsTruncate;
  if (abi >= 5) access |= kFsIoctlDev;
  return access;
}

absl::Status Sandboxer::Landlock() {
  if (!policy_.landlock) return absl::OkStatus();
  const int abi = report_.landlock_abi;
  if (abi <= 0) return Record("landlock", State::kLacking, "the kernel has no Landlock");
  const std::vector<UniqueFd>& beneath = beneath_;
  RulesetAttr attr{};
  attr.handled_access_fs = HandledFsAccess(abi);
  std::vector<std::string> enforced = {
      policy_.read_only_paths.empty()
          ? std::string("no filesystem")
          : absl::StrCat("read-only beneath ", absl::StrJoin(policy_.read_only_paths, " "))};
  std::vector<std::string> lacking;
  if (policy_.deny_tcp) {
    if (abi >= 4) {
      attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
      enforced.push_back("no TCP bind/connect");
    } else {
      lacking.push_back("TCP (ABI 4)");
    }
  }
  if (policy_.scope_abstract_sockets || policy_.scope_signals) {
    if (abi >= 6) {
      if (policy_.scope_abstract_sockets) attr.scoped |= kScopeAbstractUnixSocket;
      if (policy_.scope_signals) attr.scoped |= kScopeSignal;
      enforced.push_back("scoped abstract sockets and signals");
    } else {
      lacking.push_back("scoping (ABI 6)");
    }
  }
  UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0)));
  if (!ruleset.is_open()) {
    return Record("landlock", State::kLacking,
                  absl::StrCat("landlock_create_ruleset: ", ErrnoText(errno)));
  }
  for (size_t i = 0; i < beneath.size(); ++i) {
    // A directory may be listed and read beneath; a file only read.
    struct stat st {};
    const bool directory = ::fstat(beneath[i].fd(), &st) == 0 && S_ISDIR(st.st_mode);
    PathBeneathAttr rule{
        LANDLOCK_ACCESS_FS_READ_FILE | (directory ? LANDLOCK_ACCESS_FS_READ_DIR : uint64_t{0}),
        beneath[i].fd()};
    if (::syscall(SYS_landlock_add_rule, ruleset.fd(), LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
      return absl::ErrnoToStatus(
          errno, absl::StrCat("sandbox: landlock_add_rule ", policy_.read_only_paths[i]));
    }
  }
  if (::syscall(SYS_landlock_restrict_self, ruleset.fd(), 0) != 0) {
    return Record("landlock", State::kLacking,
                  absl::StrCat("landlock_restrict_self: ", ErrnoText(errno)));
  }
  const std::string detail = absl::StrCat("ABI ", abi, ": ", absl::StrJoin(enforced, ", "));
  if (!lacking.empty()) {
    return Record("landlock", State::kLacking,
                  absl::StrCat(detail, "; the kernel lacks ", absl::StrJoin(lacking, ", ")));
  }
  return Record("landlock", State::kEnforced, detail);
}

uint32_t DenialAction(SeccompDenial denial) {
  switch (denial) {
    case SeccompDenial::kKill:
      return SCMP_ACT_KILL_PROCESS;
    case SeccompDenial::kLog:
      return SCMP_ACT_LOG;
    case SeccompDenial::kErrno:
      break;
  }
  return SCMP_ACT_ERRNO(EPERM);
}

const char* DenialName(SeccompDenial denial) {
  switch (denial) {
    case SeccompDenial::kKill:
      return "kill";
    case SeccompDenial::kLog:
      return "log only";
    case SeccompDenial::kErrno:
      break;
  }
  return "EPERM";
}

// Adds the allow rule for `name` (clone only for threads: a new process
// is refused like any call off the list).
absl::Status Allow(scmp_filter_ctx filter, const std::string& name) {
  const int number = seccomp_syscall_resolve_name(name.c_str());
  if (number == __NR_SCMP_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("sandbox: unknown system call \"", name, "\""));
  }
  int added = 0;
  if (name == "clone") {
    added = seccomp_rule_add(filter, SCMP_ACT_ALLOW, number, 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  } else if (name == "ioctl") {
    // Only these requests: TIOCSTI on an inherited terminal would type
    // commands into the shell that started the process.
    for (unsigned long request : {FIONBIO, FIONREAD, FIOCLEX, FIONCLEX, TCGETS}) {
      if (added == 0) {
        added = seccomp_rule_add(filter, SCMP_ACT_ALLOW, number, 1,
                                 SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(request)));
      }
    }
  } else if (name == "prlimit64") {
    // Its own limits only (pid 0), not another process's of the same uid.
    added = seccomp_rule_add(filter, SCMP_ACT_ALLOW, number, 1, SCMP_A0(SCMP_CMP_EQ, 0));
  } else if (name == "tgkill") {
    // Its own threads only.
    added = seccomp_rule_add(filter, SCMP_ACT_ALLOW, number, 1,
                             SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid())));
  } else {
    added = seccomp_rule_add(filter, SCMP_ACT_ALLOW, number, 0);
  }
  if (added != 0) {
    return absl::ErrnoToStatus(-added, absl::StrCat("sandbox: seccomp rule for ", name));
  }
  return absl::OkStatus();
}

absl::Status Sandboxer::Seccomp() {
  if (!policy_.seccomp) return absl::OkStatus();
  scmp_filter_ctx filter = seccomp_init(DenialAction(policy_.denial));
  if (filter == nullptr) return absl::InternalError("sandbox: seccomp_init failed");
  // Every thread, or none; and the kernel's own errno when it refuses.
  // libseccomp refuses them when its probe of the kernel found no
  // seccomp(2) (or an outer filter refused the probe): nothing to load.
  if (seccomp_attr_set(filter, SCMP_FLTATR_CTL_TSYNC, 1) != 0 ||
      seccomp_attr_set(filter, SCMP_FLTATR_API_SYSRAWRC, 1) != 0) {
    seccomp_release(filter);
    return Record("seccomp", State::kLacking,
                  absl::StrCat("libseccomp found no seccomp(2) with thread sync, API level ",
                               seccomp_api_get()));
  }
  absl::Status built = absl::OkStatus();
  for (const std::string& name : policy_.system_calls) {
    if (built.ok()) built = Allow(filter, name);
  }
  // clone3's flags are out of a filter's reach (a pointer): ENOSYS makes
  // the C library fall back to clone, whose flags the rule above checks.
  if (built.ok()) {
    const int added =
        seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), seccomp_syscall_resolve_name("clone3"), 0);
    if (added != 0 && added != -EEXIST) {
      built = absl::ErrnoToStatus(-added, "sandbox: seccomp rule for clone3");
    }
  }
  if (!built.ok()) {
    seccomp_release(filter);
    return built;
  }
  const int loaded = seccomp_load(filter);
  seccomp_release(filter);
  if (loaded != 0) {
    return Record("seccomp", State::kLacking, absl::StrCat("seccomp_load: ", ErrnoText(-loaded)));
  }
  return Record("seccomp", State::kEnforced,
                absl::StrCat(policy_.system_calls.size(), " system calls, others ",
                             DenialName(policy_.denial)));
}

}  // namespace

absl::StatusOr<SandboxMode> ParseSandboxMode(absl::string_view text) {
  if (text == "strict") return SandboxMode::kStrict;
  if (text == "best-effort") return SandboxMode::kBestEffort;
  if (text == "off") return SandboxMode::kOff;
  return absl::InvalidArgumentError(
      absl::StrCat("--sandbox=", text, ": expected strict, best-effort or off"));
}

int LandlockAbi() {
  const long abi =
      ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

std::vector<std::string> EventLoopSystemCalls() {
  return {
      // The loop.
      "epoll_create1",
      "epoll_ctl",
      "epoll_wait",
      "epoll_pwait",
      "epoll_pwait2",
      "eventfd2",
      "timerfd_create",
      "timerfd_settime",
      "timerfd_gettime",
      "signalfd4",
      "rt_sigprocmask",
      "rt_sigaction",
      "rt_sigreturn",
      "restart_syscall",
      "sigaltstack",
      // Descriptors it holds.
      "read",
      "readv",
      "pread64",
      "write",
      "writev",
      "pwrite64",
      "close",
      "close_range",
      "fcntl",
      "fstat",
      "newfstatat",
      "statx",
      "lseek",
      "dup",
      "dup3",
      "ioctl",
      "sendfile",
      "pipe2",
      // Sockets it was handed.
      "accept4",
      "recvfrom",
      "recvmsg",
      "recvmmsg",
      "sendto",
      "sendmsg",
      "sendmmsg",
      "shutdown",
      "getsockopt",
      "setsockopt",
      "getsockname",
      "getpeername",
      // Memory.
      "brk",
      "mmap",
      "munmap",
      "mremap",
      "mprotect",
      "madvise",
      // Time.
      "clock_gettime",
      "clock_getres",
      "clock_nanosleep",
      "nanosleep",
      "gettimeofday",
      // Threads and futexes (clone only with CLONE_THREAD).
      "clone",
      "futex",
      "set_robust_list",
      "get_robust_list",
      "rseq",
      "sched_yield",
      "sched_getaffinity",
      "set_tid_address",
      "membarrier",
      // Who it is, randomness, and the end.
      "getpid",
      "gettid",
      "getppid",
      "getuid",
      "geteuid",
      "getgid",
      "getegid",
      "getresuid",
      "getresgid",
      "getrandom",
      "prlimit64",
      "tgkill",
      "exit",
      "exit_group",
  };
}

SandboxPolicy WorkerSandbox() {
  SandboxPolicy policy;
  policy.system_calls = EventLoopSystemCalls();
  return policy;
}

SandboxPolicy EmptySandbox() {
  SandboxPolicy policy;
  policy.no_new_privs = false;
  policy.drop_capabilities = false;
  policy.no_new_processes = false;
  policy.no_core_dumps = false;
  policy.bound_open_files = false;
  policy.landlock = false;
  policy.seccomp = false;
  return policy;
}

bool SandboxReport::complete() const {
  for (const SandboxLayer& layer : layers) {
    if (layer.state == State::kLacking) return false;
  }
  return true;
}

std::string SandboxReport::ToString() const {
  if (layers.empty()) return "sandbox: off";
  std::vector<std::string> enforced;
  std::vector<std::string> lacking;
  for (const SandboxLayer& layer : layers) {
    std::string text =
        layer.detail.empty() ? layer.name : absl::StrCat(layer.name, " (", layer.detail, ")");
    if (layer.state == State::kEnforced) enforced.push_back(std::move(text));
    if (layer.state == State::kLacking) lacking.push_back(std::move(text));
  }
  return absl::StrCat("sandbox: enforced ",
                      enforced.empty() ? "nothing" : absl::StrJoin(enforced, ", "),
                      "; lacking: ", lacking.empty() ? "nothing" : absl::StrJoin(lacking, ", "));
}

absl::StatusOr<SandboxReport> ApplySandbox(const SandboxPolicy& policy, SandboxMode mode) {
  return Sandboxer(policy, mode).Apply();
}

absl::Status ForbidNewProcesses(SandboxMode mode, SandboxReport* report) {
  if (mode == SandboxMode::kOff) return absl::OkStatus();
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_NPROC, &none) != 0) {
    const std::string why = absl::StrCat("nproc: ", ErrnoText(errno));
    if (mode == SandboxMode::kStrict) {
      return absl::FailedPreconditionError(
          absl::StrCat("sandbox (strict): limits could not be applied: ", why));
    }
    report->layers.push_back(SandboxLayer{"limits", State::kLacking, why});
    return absl::OkStatus();
  }
  for (SandboxLayer& layer : report->layers) {
    if (layer.name == "limits" && layer.state == State::kEnforced) {
      layer.detail = absl::StrCat("nproc 0, ", layer.detail);
      return absl::OkStatus();
    }
  }
  report->layers.push_back(SandboxLayer{"limits", State::kEnforced, "nproc 0"});
  return absl::OkStatus();
}

}  // namespace conet::ipc
