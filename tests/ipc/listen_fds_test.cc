#include "ipc/listen_fds.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/util/test_util.h"

// Every scenario runs in a forked child: it must put descriptors at 3 and 4,
// which the test runner may be using in this process. The child reports
// back through a pipe: an empty report means every check passed.
namespace conet::ipc {
namespace {

using ::conet::test::FdLeakCheck;

// Collects failed checks in the child, where gtest's macros are no use.
class Report {
 public:
  void Expect(bool ok, const std::string& what) {
    if (!ok) absl::StrAppend(&text_, what, "; ");
  }
  std::string text() const { return text_; }

 private:
  std::string text_;
};

// Moves `fd` to a number >= 100, out of the way of 3, 4, ...
int MoveHigh(int fd) {
  const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 100);
  ::close(fd);
  return high;
}

// Runs `body` in a forked child and returns its report, or why the child
// did not finish.
std::string RunInChild(const std::function<std::string()>& body) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) return "pipe2 failed";
  UniqueFd read_end(MoveHigh(ends[0]));
  UniqueFd write_end(MoveHigh(ends[1]));
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    const std::string report = body();
    if (::write(write_end.fd(), report.data(), report.size()) < 0) ::_exit(3);
    ::_exit(0);
  }
  write_end.Reset();
  std::string report;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(read_end.fd(), buffer, sizeof(buffer))) > 0) {
    report.append(buffer, static_cast<size_t>(n));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    absl::StrAppend(&report, "child ended with wait status ", status);
  }
  return report;
}

// Sets (or, for null, unsets) the three variables.
void SetEnvironment(const char* pid, const char* fds, const char* names) {
  const std::pair<const char*, const char*> variables[] = {
      {"LISTEN_PID", pid}, {"LISTEN_FDS", fds}, {"LISTEN_FDNAMES", names}};
  for (const auto& [name, value] : variables) {
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
}

std::string OurPid() { return std::to_string(::getpid()); }

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

bool IsCloseOnExec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) != 0;
}

bool SameFile(int a, int b) {
  struct stat sa, sb;
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

bool EnvironmentUnset() {
  return std::getenv("LISTEN_PID") == nullptr && std::getenv("LISTEN_FDS") == nullptr &&
         std::getenv("LISTEN_FDNAMES") == nullptr;
}

// Puts a pipe's write end at 3 and a socket at 4 (not close-on-exec, as
// systemd leaves them); returns the originals, kept at high numbers.
std::pair<int, int> PlaceTwoFds() {
  int pipe_ends[2];
  int sockets[2];
  if (::pipe2(pipe_ends, O_CLOEXEC) != 0 ||
      ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    std::abort();
  }
  const int pipe_original = MoveHigh(pipe_ends[1]);
  const int socket_original = MoveHigh(sockets[0]);
  ::dup2(pipe_original, 3);
  ::dup2(socket_original, 4);
  return {pipe_original, socket_original};
}

TEST(ListenFdsTest, NoVariablesGiveNothing) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunInChild([] {
              Report report;
              SetEnvironment(nullptr, nullptr, nullptr);
              absl::StatusOr<std::vector<ListenedFd>> fds = ListenFds();
              report.Expect(fds.ok(), fds.status().ToString());
              report.Expect(fds.ok() && fds->empty(), "expected no descriptors");
              return report.text();
            }),
            "");
}

TEST(ListenFdsTest, AnotherProcessesPidGivesNothingAndTouchesNothing) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunInChild([] {
              Report report;
              PlaceTwoFds();
              const std::string parent = std::to_string(::getppid());
              SetEnvironment(parent.c_str(), "2", "a:b");
              absl::StatusOr<std::vector<ListenedFd>> fds = ListenFds();
              report.Expect(fds.ok(), fds.status().ToString());
              report.Expect(fds.ok() && fds->empty(), "expected no descriptors");
              report.Expect(IsOpen(3) && IsOpen(4), "3 and 4 must stay open");
              report.Expect(!IsCloseOnExec(3), "3 must be left as it was");
              report.Expect(EnvironmentUnset(), "variables still set");
              return report.text();
            }),
            "");
}

TEST(ListenFdsTest, TakesNamedDescriptorsAndMarksThemCloseOnExec) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunInChild([] {
              Report report;
              auto [pipe_original, socket_original] = PlaceTwoFds();
              SetEnvironment(OurPid().c_str(), "2", "web:control");
              absl::StatusOr<std::vector<ListenedFd>> fds = ListenFds();
              report.Expect(fds.ok(), fds.status().ToString());
              if (!fds.ok()) return report.text();
              report.Expect(fds->size() == 2, absl::StrCat("got ", fds->size(), " fds"));
              if (fds->size() != 2) return report.text();
              const ListenedFd& web = (*fds)[0];
              const ListenedFd& control = (*fds)[1];
              report.Expect(web.fd.fd() == 3, "first is not descriptor 3");
              report.Expect(control.fd.fd() == 4, "second is not descriptor 4");
              report.Expect(web.name == "web", "first name: " + web.name);
              report.Expect(control.name == "control", "second name: " + control.name);
              report.Expect(IsCloseOnExec(3) && IsCloseOnExec(4), "not close-on-exec");
              report.Expect(SameFile(3, pipe_original), "3 is not the pipe");
              report.Expect(SameFile(4, socket_original), "4 is not the socket");
              report.Expect(EnvironmentUnset(), "variables still set");
              fds->clear();
              report.Expect(!IsOpen(3) && !IsOpen(4), "UniqueFds did not close 3, 4");
              return report.text();
            }),
            "");
}

TEST(ListenFdsTest, MissingNamesAreUnknown) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunInChild([] {
              Report report;
              PlaceTwoFds();
              SetEnvironment(OurPid().c_str(), "2", nullptr);
              absl::StatusOr<std::vector<ListenedFd>> fds = ListenFds();
              report.Expect(fds.ok(), fds.status().ToString());
              if (!fds.ok()) return report.text();
              report.Expect(fds->size() == 2, absl::StrCat("got ", fds->size(), " fds"));
              for (const ListenedFd& listened : *fds) {
                report.Expect(listened.name == "unknown", "name: " + listened.name);
              }
              return report.text();
            }),
            "");
}

TEST(ListenFdsTest, ZeroDescriptorsGiveNothing) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunInChild([] {
              Report report;
              SetEnvironment(OurPid().c_str(), "0", nullptr);
              absl::StatusOr<std::vector<ListenedFd>> fds = ListenFds();
              report.Expect(fds.ok() && fds->empty(), fds.status().ToString());
              return report.text();
            }),
            "");
}

TEST(ListenFdsTest, KeepsTheVariablesWhenAsked) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunInChild([] {
              Report report;
              PlaceTwoFds();
              SetEnvironment(OurPid().c_str(), "2", nullptr);
              absl::StatusOr<std::vector<ListenedFd>> fds = ListenFds(/*unset_environment=*/false);
              report.Expect(fds.ok() && fds->size() == 2, fds.status().ToString());
              report.Expect(std::getenv("LISTEN_FDS") != nullptr, "LISTEN_FDS unset");
              report.Expect(std::getenv("LISTEN_PID") != nullptr, "LISTEN_PID unset");
              return report.text();
            }),
            "");
}

struct BadEnvironment {
  const char* pid;  // "self": our pid
  const char* fds;
  const char* names;
  const char* quoted;  // the value the error must quote
};

TEST(ListenFdsTest, BadValuesAreInvalidArgumentAndTakeNothing) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunInChild([] {
              const BadEnvironment cases[] = {
                  {"self", "abc", nullptr, "\"abc\""},
                  {"self", "-1", nullptr, "\"-1\""},
                  {"self", "10001", nullptr, "\"10001\""},
                  {"self", "99999999999999999999999", nullptr, "\"99999999999999999999999\""},
                  {"self", "2x", nullptr, "\"2x\""},
                  {"self", "", nullptr, "LISTEN_FDS=\"\""},
                  {"pid", "2", nullptr, "\"pid\""},
                  {"-7", "2", nullptr, "\"-7\""},
                  {"self", "2", "one", "\"one\""},
                  {"self", "2", "a:b:c", "\"a:b:c\""},
                  {"self", "2", "", "LISTEN_FDNAMES=\"\""},
              };
              Report report;
              PlaceTwoFds();
              for (const BadEnvironment& bad : cases) {
                const std::string pid = std::string(bad.pid) == "self" ? OurPid() : bad.pid;
                SetEnvironment(pid.c_str(), bad.fds, bad.names);
                absl::StatusOr<std::vector<ListenedFd>> fds = ListenFds();
                const std::string label =
                    absl::StrCat("pid=", bad.pid, " fds=", bad.fds,
                                 " names=", bad.names == nullptr ? "(none)" : bad.names, ": ");
                report.Expect(absl::IsInvalidArgument(fds.status()),
                              label + "got " + fds.status().ToString());
                report.Expect(
                    std::string(fds.status().message()).find(bad.quoted) != std::string::npos,
                    label + "message does not quote " + bad.quoted + ": " +
                        std::string(fds.status().message()));
                report.Expect(IsOpen(3) && IsOpen(4), label + "3 or 4 was closed");
                report.Expect(!IsCloseOnExec(3), label + "3 was touched");
                report.Expect(EnvironmentUnset(), label + "variables still set");
              }
              return report.text();
            }),
            "");
}

TEST(ListenFdsTest, DescriptorNotOpenIsAnErrorAndTakesNothing) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunInChild([] {
              Report report;
              PlaceTwoFds();
              ::close(4);
              SetEnvironment(OurPid().c_str(), "2", nullptr);
              absl::StatusOr<std::vector<ListenedFd>> fds = ListenFds();
              report.Expect(!fds.ok(), "a closed descriptor 4 was accepted");
              report.Expect(
                  std::string(fds.status().message()).find("descriptor 4") != std::string::npos,
                  "message does not name descriptor 4: " + fds.status().ToString());
              report.Expect(IsOpen(3), "3 was closed");
              report.Expect(EnvironmentUnset(), "variables still set");
              return report.text();
            }),
            "");
}

// A socket of `domain` and `type`, bound to an ephemeral name and, when
// `listen`, listening.
UniqueFd MakeSocket(int domain, int type, bool listen) {
  UniqueFd fd(::socket(domain, type | SOCK_CLOEXEC, 0));
  if (domain == AF_INET) {
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.fd(), reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  } else {
    sa_family_t autobind = AF_UNIX;  // an abstract name picked by the kernel
    EXPECT_EQ(::bind(fd.fd(), reinterpret_cast<sockaddr*>(&autobind), sizeof autobind), 0);
  }
  if (listen) {
    EXPECT_EQ(::listen(fd.fd(), 4), 0);
  }
  return fd;
}

TEST(ValidateListenerTest, ListeningSocketsOfTheKindPass) {
  const ListenerKind stream;
  EXPECT_TRUE(ValidateListener(MakeSocket(AF_INET, SOCK_STREAM, true).fd(), stream).ok());
  EXPECT_TRUE(ValidateListener(MakeSocket(AF_UNIX, SOCK_STREAM, true).fd(), stream).ok());
  const ListenerKind seqpacket{.type = SOCK_SEQPACKET, .unix_only = true};
  EXPECT_TRUE(ValidateListener(MakeSocket(AF_UNIX, SOCK_SEQPACKET, true).fd(), seqpacket).ok());
}

// Expects `status` to be FailedPrecondition whose message holds `words`.
void ExpectRefused(const absl::Status& status, const std::string& words) {
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find(words), std::string::npos) << status;
}

TEST(ValidateListenerTest, EachWrongDescriptorIsNamedWithWhatIsWrong) {
  const ListenerKind stream;
  const UniqueFd datagram = MakeSocket(AF_INET, SOCK_DGRAM, false);
  ExpectRefused(ValidateListener(datagram.fd(), stream, "web"),
                absl::StrCat("descriptor ", datagram.fd(),
                             " (\"web\"): a SOCK_DGRAM socket, expected SOCK_STREAM"));
  const UniqueFd idle = MakeSocket(AF_INET, SOCK_STREAM, false);
  ExpectRefused(ValidateListener(idle.fd(), stream),
                absl::StrCat("descriptor ", idle.fd(), ": not listening"));
  int ends[2];
  ASSERT_EQ(::pipe2(ends, O_CLOEXEC), 0);
  const UniqueFd read_end(ends[0]);
  const UniqueFd write_end(ends[1]);
  ExpectRefused(ValidateListener(read_end.fd(), stream), "not a socket");
  const ListenerKind seqpacket{.type = SOCK_SEQPACKET, .unix_only = true};
  ExpectRefused(ValidateListener(MakeSocket(AF_UNIX, SOCK_STREAM, true).fd(), seqpacket),
                "a SOCK_STREAM socket, expected SOCK_SEQPACKET");
  const ListenerKind unix_stream{.type = SOCK_STREAM, .unix_only = true};
  ExpectRefused(ValidateListener(MakeSocket(AF_INET, SOCK_STREAM, true).fd(), unix_stream),
                "an AF_INET socket, expected AF_UNIX");
  const UniqueFd netlink(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const ListenerKind netlink_type{.type = SOCK_DGRAM};
  ExpectRefused(ValidateListener(netlink.fd(), netlink_type), "address family 16");
}

TEST(ValidateListenerTest, AClosedDescriptorIsItsErrno) {
  const absl::Status closed = ValidateListener(1000, ListenerKind());
  EXPECT_EQ(closed.code(), absl::StatusCode::kFailedPrecondition) << closed;  // EBADF
  EXPECT_NE(closed.message().find("descriptor 1000"), std::string::npos) << closed;
}

}  // namespace
}  // namespace conet::ipc
