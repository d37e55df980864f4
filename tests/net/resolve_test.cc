#include "net/resolve.h"

#include <future>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/timer.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;
using ::testing::HasSubstr;

using Addresses = absl::StatusOr<std::vector<SocketAddress>>;

std::vector<std::string> Texts(const Addresses& addresses) {
  std::vector<std::string> texts;
  if (!addresses.ok()) return {addresses.status().ToString()};
  for (const SocketAddress& a : *addresses) texts.push_back(a.ToString());
  return texts;
}

TEST(ResolveTest, LiteralAddressesNeedNoLookup) {
  internal::LookupFunction never = [](const std::string&, uint16_t) -> Addresses {
    ADD_FAILURE() << "looked up a literal";
    return absl::InternalError("looked up");
  };
  for (const char* literal : {"127.0.0.1:80", "[::1]:443", "unix:/tmp/x.sock", "unix:@n"}) {
    EXPECT_THAT(Texts(RunTask(internal::ResolveWith(literal, never))),
                ::testing::ElementsAre(literal));
  }
}

TEST(ResolveTest, LocalhostGivesLoopbackAddressesWithThePort) {
  FdLeakCheck leaks;
  Addresses addresses = RunTask(Resolve("localhost:8080"));
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  ASSERT_FALSE(addresses->empty());
  for (const SocketAddress& a : *addresses) {
    EXPECT_THAT(a.ToString(), ::testing::AnyOf("127.0.0.1:8080", "[::1]:8080"));
  }
}

TEST(ResolveTest, BadTargetsAreRefusedWithTheReason) {
  struct Case {
    const char* target;
    const char* reason;
  };
  for (const Case& c : std::vector<Case>{
           {"localhost", "expected HOST:PORT"},
           {":80", "missing host"},
           {"localhost:http", "port must be a number"},
           {"localhost:65536", "port must be a number from 0 to 65535"},
           {"::1:80", "IPv6 literal goes in brackets"},
           {"unix:", "unix:"},
       }) {
    Addresses addresses = RunTask(Resolve(c.target));
    EXPECT_TRUE(absl::IsInvalidArgument(addresses.status()))
        << c.target << ": " << addresses.status();
    EXPECT_THAT(addresses.status().message(), HasSubstr(c.reason)) << c.target;
  }
}

TEST(ResolveTest, AnUnknownNameIsAnErrorNamingIt) {
  Addresses addresses = RunTask(Resolve("no-such-host.invalid:80"));
  EXPECT_FALSE(addresses.ok());
  EXPECT_THAT(addresses.status().message(), HasSubstr("no-such-host.invalid"));
}

TEST(ResolveTest, LookupErrorsPassThrough) {
  internal::LookupFunction fails = [](const std::string&, uint16_t) -> Addresses {
    return absl::UnavailableError("resolver down");
  };
  Addresses addresses = RunTask(internal::ResolveWith("example.org:1", fails));
  EXPECT_TRUE(absl::IsUnavailable(addresses.status()));
}

// A lookup that blocks until the test lets it go, as a slow DNS would.
Task<Addresses> ResolveCancelledMidway(std::shared_future<void> release,
                                       std::promise<void>* finished) {
  std::stop_source stop;
  internal::LookupFunction slow = [release, finished](const std::string& host,
                                                      uint16_t port) -> Addresses {
    release.wait();
    finished->set_value();
    EXPECT_EQ(host, "slow.example");
    return std::vector<SocketAddress>{SocketAddress::Ipv4Loopback(port)};
  };
  co_await Sleep(absl::Milliseconds(1));
  Task<Addresses> lookup = internal::ResolveWith("slow.example:53", slow, stop.get_token());
  // Stop it from a timer while the lookup is blocked.
  struct Stopper {
    static Task<void> After(std::stop_source s) {
      co_await Sleep(absl::Milliseconds(5));
      s.request_stop();
    }
  };
  auto stopper = Stopper::After(stop);
  EventLoop::Current()->SpawnDetached(std::move(stopper));
  co_return co_await std::move(lookup);
}

TEST(ResolveTest, CancellationEndsTheWaitWhileTheLookupBlocks) {
  std::promise<void> release;
  std::promise<void> finished;
  Addresses addresses = RunTask(ResolveCancelledMidway(release.get_future().share(), &finished));
  EXPECT_TRUE(absl::IsCancelled(addresses.status())) << addresses.status();
  EXPECT_THAT(addresses.status().message(), HasSubstr("slow.example:53"));
  // The lookup was still blocked; let it finish (its answer is discarded).
  release.set_value();
  finished.get_future().wait();
}

TEST(ResolveTest, TheDeadlineCoversTheLookup) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> finished;
  internal::LookupFunction slow = [released, &finished](const std::string&, uint16_t) -> Addresses {
    released.wait();
    finished.set_value();
    return absl::InternalError("too late");
  };
  Addresses addresses =
      RunTask(internal::ResolveWith("slow.example:53", slow, Within(absl::Milliseconds(5))));
  EXPECT_TRUE(absl::IsDeadlineExceeded(addresses.status())) << addresses.status();
  release.set_value();
  finished.get_future().wait();
}

}  // namespace
}  // namespace conet
