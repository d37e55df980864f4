#include "net/testing.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "net/timer.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;

Task<absl::StatusOr<int>> Answer(absl::StatusOr<int> answer) {
  co_await Yield();
  co_return answer;
}

Task<void> AssertThenRecord(absl::StatusOr<int> answer, std::string* seen) {
  CONET_CO_ASSERT_OK(co_await Answer(answer));
  CONET_CO_ASSERT_OK_AND_ASSIGN(const int value, co_await Answer(answer));
  *seen = std::to_string(value);
}

TEST(TestingTest, CoAssertsPassAnOkValueThrough) {
  std::string seen;
  RunTask(AssertThenRecord(42, &seen));
  EXPECT_EQ(seen, "42");
}

TEST(TestingTest, CoAssertsFailTheTestAndReturnOnAnError) {
  std::string seen = "untouched";
  EXPECT_NONFATAL_FAILURE(RunTask(AssertThenRecord(absl::NotFoundError("no answer"), &seen)),
                          "no answer");
  EXPECT_EQ(seen, "untouched");
}

Task<void> AssignOnly(absl::StatusOr<int> answer, int* out) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(*out, co_await Answer(answer));
}

TEST(TestingTest, CoAssertOkAndAssignReportsTheExpression) {
  int out = 0;
  EXPECT_NONFATAL_FAILURE(RunTask(AssignOnly(absl::InternalError("boom"), &out)),
                          "co_await Answer(answer): INTERNAL: boom");
  EXPECT_EQ(out, 0);
  RunTask(AssignOnly(7, &out));
  EXPECT_EQ(out, 7);
}

TEST(TestingTest, ExpectOkNamesTheStatus) {
  CONET_EXPECT_OK(absl::OkStatus());
  EXPECT_NONFATAL_FAILURE(CONET_EXPECT_OK(absl::UnavailableError("down")), "UNAVAILABLE: down");
}

TEST(TestingTest, FdLeakCheckCatchesADescriptorLeftOpen) {
  int leaked = -1;
  EXPECT_NONFATAL_FAILURE(
      {
        FdLeakCheck check;
        leaked = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      },
      "descriptors leaked");
  ::close(leaked);
}

}  // namespace
}  // namespace conet
