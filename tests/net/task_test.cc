#include "net/task.h"

#include <memory>
#include <stdexcept>
#include <string>

#include "gtest/gtest.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::RunTask;

Task<int> Constant(int value) { co_return value; }

Task<int> Sum(int a, int b) {
  const int x = co_await Constant(a);
  const int y = co_await Constant(b);
  co_return x + y;
}

TEST(TaskTest, ReturnsValueThroughNestedAwaits) { EXPECT_EQ(RunTask(Sum(2, 40)), 42); }

Task<void> SetFlag(bool* flag) {
  *flag = true;
  co_return;
}

TEST(TaskTest, IsLazyUntilAwaited) {
  bool ran = false;
  Task<void> task = SetFlag(&ran);
  EXPECT_FALSE(ran);
  RunTask(std::move(task));
  EXPECT_TRUE(ran);
}

TEST(TaskTest, DestroyingAnUnstartedTaskNeverRunsItAndFreesTheFrame) {
  bool ran = false;
  auto owned = std::make_shared<int>(5);
  {
    Task<void> task = [](bool* flag, std::shared_ptr<int> keep) -> Task<void> {
      *flag = true;
      (void)keep;
      co_return;
    }(&ran, owned);
    EXPECT_EQ(owned.use_count(), 2);  // the frame holds a copy
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(owned.use_count(), 1);  // the frame is gone
}

Task<int> Throws() {
  throw std::runtime_error("boom");
  co_return 0;
}

Task<std::string> CatchesChild() {
  try {
    co_await Throws();
  } catch (const std::runtime_error& error) {
    co_return std::string("caught ") + error.what();
  }
  co_return "not thrown";
}

TEST(TaskTest, ExceptionReachesTheAwaiter) {
  EXPECT_EQ(RunTask(CatchesChild()), "caught boom");
  EXPECT_THROW(RunTask(Throws()), std::runtime_error);
}

Task<void> Nothing() { co_return; }

Task<long> MillionSynchronousAwaits() {
  long count = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    co_await Nothing();
    count += co_await Constant(1);
  }
  co_return count;
}

// Without symmetric transfer each completion would nest a stack frame and
// this would overflow the stack long before a million.
TEST(TaskTest, MillionImmediateCompletionsUseConstantStack) {
  EXPECT_EQ(RunTask(MillionSynchronousAwaits()), 1'000'000);
}

Task<int> Recurse(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await Recurse(depth - 1);
}

TEST(TaskTest, DeepRecursionCompletes) { EXPECT_EQ(RunTask(Recurse(10'000)), 10'000); }

TEST(TaskTest, MoveTransfersOwnership) {
  Task<int> a = Constant(3);
  Task<int> b = std::move(a);
  EXPECT_FALSE(a.Valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(b.Valid());
  EXPECT_EQ(RunTask(std::move(b)), 3);
}

Task<bool> TokenIsStopPossible() {
  std::stop_token token = co_await CurrentStopToken();
  co_return token.stop_possible();
}

Task<bool> ChildSeesParentToken() { co_return co_await TokenIsStopPossible(); }

TEST(TaskTest, ChildInheritsTheAwaitersStopToken) {
  EXPECT_FALSE(RunTask(TokenIsStopPossible()));
  std::stop_source source;
  Task<bool> parent = ChildSeesParentToken();
  parent.SetStopToken(source.get_token());
  EXPECT_TRUE(RunTask(std::move(parent)));
}

}  // namespace
}  // namespace conet
