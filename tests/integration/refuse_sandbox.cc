// refuse_sandbox PROGRAM [ARG]...: runs PROGRAM under an outer seccomp
// filter that stands in for a kernel without Landlock and a container that
// refuses further filters: landlock_create_ruleset fails with ENOSYS, and
// seccomp (and prctl(PR_SET_SECCOMP)) with EACCES. Everything else is
// allowed. Tests use it to see what a program's sandbox reports, and that
// --sandbox=strict exits 1, when those layers are lacking.
#include <errno.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: refuse_sandbox PROGRAM [ARG]...\n");
    return 2;
  }
  scmp_filter_ctx outer = seccomp_init(SCMP_ACT_ALLOW);
  if (outer == nullptr ||
      seccomp_rule_add(outer, SCMP_ACT_ERRNO(ENOSYS),
                       seccomp_syscall_resolve_name("landlock_create_ruleset"), 0) != 0 ||
      seccomp_rule_add(outer, SCMP_ACT_ERRNO(EACCES), seccomp_syscall_resolve_name("seccomp"), 0) !=
          0 ||
      seccomp_rule_add(outer, SCMP_ACT_ERRNO(EACCES), seccomp_syscall_resolve_name("prctl"), 1,
                       SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP)) != 0) {
    std::fprintf(stderr, "refuse_sandbox: building the filter failed\n");
    return 1;
  }
  const int loaded = seccomp_load(outer);
  seccomp_release(outer);
  if (loaded != 0) {
    std::fprintf(stderr, "refuse_sandbox: seccomp_load: %s\n", std::strerror(-loaded));
    return 1;
  }
  ::execv(argv[1], argv + 1);
  std::fprintf(stderr, "refuse_sandbox: exec %s: %s\n", argv[1], std::strerror(errno));
  return 127;
}
