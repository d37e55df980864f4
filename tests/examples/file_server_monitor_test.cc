// A test that stands in for file_server's worker and asks the monitor for
// what a compromised worker would: paths out of the root, FIFOs, oversized
// and malformed frames, descriptors it should not send. Each is refused and
// the monitor goes on answering.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "examples/file_server/monitor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/unix_socket.h"
#include "net/when_all.h"
#include "tests/util/scratch_dir.h"
#include "tests/util/test_util.h"

namespace conet::file_server {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.MakeDirectory("root");
    dir_.MakeDirectory("root/dir");
    dir_.WriteFile("root/index.html", "top index");
    dir_.WriteFile("root/dir/index.html", "dir index");
    dir_.WriteFile("root/dir/page.html", "page");
    dir_.WriteFile("secret", "secret");
    dir_.MakeSymlink("root/out", "../secret");
    dir_.MakeFifo("root/fifo");
    root_ = dir_.OpenDirectory("root");
    root_fd_ = root_.fd();
  }

  test::ScratchDir dir_;
  UniqueFd root_;
  int root_fd_ = -1;
};

// What the monitor answered: its text and the file's contents, if any.
std::string Shown(const MonitorReply& reply) {
  if (!reply.file.is_open()) return reply.text;
  char buffer[64];
  const ssize_t n = ::pread(reply.file.fd(), buffer, sizeof(buffer), 0);
  return reply.text + " " + std::string(buffer, n > 0 ? static_cast<size_t>(n) : 0);
}

TEST_F(MonitorTest, AnswersFilesAndIndexesBeneathTheRoot) {
  FdLeakCheck leaks;
  EXPECT_EQ(Shown(Answer("OPEN /dir/page.html", root_fd_)), "OK /dir/page.html page");
  EXPECT_EQ(Shown(Answer("OPEN /", root_fd_)), "OK /index.html top index");
  EXPECT_EQ(Shown(Answer("OPEN /dir/", root_fd_)), "OK /dir/index.html dir index");
  EXPECT_EQ(Shown(Answer("OPEN /dir", root_fd_)), "OK /dir/index.html dir index");
}

TEST_F(MonitorTest, RefusesWhatIsNotAFileBeneathTheRoot) {
  FdLeakCheck leaks;
  for (const char* request :
       {"OPEN /../secret", "OPEN /out", "OPEN //etc/passwd", "OPEN /fifo", "OPEN /absent"}) {
    EXPECT_EQ(Shown(Answer(request, root_fd_)), "ERR 404") << request;
  }
  for (const std::string& request :
       {std::string("OPEN dir/page.html"), std::string("GET /x"), std::string("OPEN /a\0b", 9),
        "OPEN /" + std::string(kMaxRequestPath, 'a')}) {
    EXPECT_EQ(Shown(Answer(request, root_fd_)), "ERR 400") << request;
  }
}

// The hostile worker's side of the channel.
Task<void> Attack(ipc::Channel& worker, int secret_fd) {
  absl::StatusOr<ipc::Message> reply = co_await worker.Call("OPEN /../secret");
  CONET_CO_ASSERT_OK(reply);
  EXPECT_EQ(reply->bytes, "ERR 404");
  EXPECT_TRUE(reply->fds.empty());
  // A request carrying a descriptor: refused, and the monitor keeps none.
  std::vector<int> fds = {secret_fd};
  reply = co_await worker.Call("OPEN /dir/page.html", fds);
  CONET_CO_ASSERT_OK(reply);
  EXPECT_EQ(reply->bytes, "ERR 400");
  // A plain message, a malformed frame and an oversized one: dropped.
  CONET_CO_ASSERT_OK(co_await worker.Send("OPEN /dir/page.html"));
  CONET_CO_ASSERT_OK(co_await worker.socket().Send("Zgarbage"));
  const std::string huge(200 * 1024, 'M');
  CONET_CO_ASSERT_OK(co_await worker.socket().Send(huge));
  // Many requests in flight at once, each answered.
  Task<absl::StatusOr<ipc::Message>> page = worker.Call("OPEN /dir/page.html");
  Task<absl::StatusOr<ipc::Message>> fifo = worker.Call("OPEN /fifo");
  Task<absl::StatusOr<ipc::Message>> top = worker.Call("OPEN /");
  auto [a, b, c] = co_await WhenAll(std::move(page), std::move(fifo), std::move(top));
  CONET_CO_ASSERT_OK(a);
  CONET_CO_ASSERT_OK(b);
  CONET_CO_ASSERT_OK(c);
  EXPECT_EQ(a->bytes, "OK /dir/page.html");
  EXPECT_EQ(a->fds.size(), 1u);
  EXPECT_EQ(b->bytes, "ERR 404");
  EXPECT_EQ(c->bytes, "OK /index.html");
  // The descriptor that came back is read-only.
  if (!a->fds.empty()) {
    EXPECT_EQ(::fcntl(a->fds[0].fd(), F_GETFL) & O_ACCMODE, O_RDONLY);
  }
}

Task<void> AttackThenLeave(ipc::Channel& worker, int secret_fd) {
  co_await Attack(worker, secret_fd);
  worker.socket().Close();  // the worker goes: the monitor's loop ends
}

Task<void> HostileWorker(int root_fd, int secret_fd) {
  auto pair = ipc::SocketPair(ipc::SocketType::kSeqPacket);
  CONET_CO_ASSERT_OK(pair);
  ipc::Channel monitor(std::move(pair->first));
  {
    ipc::Channel worker(std::move(pair->second));
    auto [served, attacked] =
        co_await WhenAll(ServeWorker(monitor, root_fd), AttackThenLeave(worker, secret_fd));
    EXPECT_TRUE(served.ok()) << served;
  }
}

TEST_F(MonitorTest, AHostileWorkerIsRefusedAndTheMonitorGoesOn) {
  FdLeakCheck leaks;
  const int secret_fd = ::open(dir_.Path("secret").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(secret_fd, 0);
  RunTask(HostileWorker(root_fd_, secret_fd));
  ::close(secret_fd);
}

}  // namespace
}  // namespace conet::file_server
