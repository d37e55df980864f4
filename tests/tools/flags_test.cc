#include "tools/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, name, "default", "a string");
ABSL_FLAG(int, count, 1, "an int");
ABSL_FLAG(bool, verbose, false, "a bool");
ABSL_FLAG(absl::Duration, wait, absl::Seconds(5), "a duration");
ABSL_FLAG(std::vector<std::string>, allow, {}, "a list");
ABSL_FLAG(std::string, two_words, "", "a name with an underscore");

namespace conet::tools {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// argv as ParseFlags gets it, with the program's name first.
class Argv {
 public:
  explicit Argv(std::vector<std::string> args) : args_(std::move(args)) {
    args_.insert(args_.begin(), "program");
    for (std::string& arg : args_) pointers_.push_back(arg.data());
  }
  int argc() const { return static_cast<int>(pointers_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> pointers_;
};

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args, const FlagRules& rules = {}) {
  Argv argv(std::move(args));
  return ParseFlags(argv.argc(), argv.argv(), rules);
}

class FlagsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    absl::SetFlag(&FLAGS_name, "default");
    absl::SetFlag(&FLAGS_count, 1);
    absl::SetFlag(&FLAGS_verbose, false);
    absl::SetFlag(&FLAGS_wait, absl::Seconds(5));
    absl::SetFlag(&FLAGS_allow, {});
    absl::SetFlag(&FLAGS_two_words, "");
  }
};

TEST_F(FlagsTest, SetsEachKindOfFlag) {
  absl::StatusOr<ParsedArgs> args =
      Parse({"--name=x", "--count=7", "--verbose", "--wait=250ms", "--allow=a"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_FALSE(args->help);
  EXPECT_EQ(absl::GetFlag(FLAGS_name), "x");
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 7);
  EXPECT_TRUE(absl::GetFlag(FLAGS_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_wait), absl::Milliseconds(250));
  EXPECT_THAT(absl::GetFlag(FLAGS_allow), ElementsAre("a"));
}

TEST_F(FlagsTest, AListFlagGivenAgainAddsToTheList) {
  ASSERT_TRUE(Parse({"--allow=1", "--allow=2,3", "--allow=4"}).ok());
  EXPECT_THAT(absl::GetFlag(FLAGS_allow), ElementsAre("1", "2", "3", "4"));
  EXPECT_THAT(Parse({"--allow="}).status().message(), HasSubstr("--allow=: expected a value"));
  ASSERT_TRUE(Parse({"--name=a", "--name=b"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_name), "b");
}

TEST_F(FlagsTest, ADashStandsForAnUnderscore) {
  ASSERT_TRUE(Parse({"--two-words=yes"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_two_words), "yes");
  EXPECT_THAT(Parse({"--no-such=1"}).status().message(), HasSubstr("unknown flag --no-such"));
}

TEST_F(FlagsTest, HelpIsReportedNotActedOn) {
  absl::StatusOr<ParsedArgs> args = Parse({"--count=3", "-h"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->help);
  EXPECT_TRUE(Parse({"--help"})->help);
}

TEST_F(FlagsTest, UnknownFlagsAndBadValuesAreErrorsNamingThem) {
  absl::Status unknown = Parse({"--nosuch=1"}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(unknown));
  EXPECT_THAT(unknown.message(), HasSubstr("unknown flag --nosuch"));
  absl::Status bad = Parse({"--count=many"}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  EXPECT_THAT(bad.message(), HasSubstr("--count=many"));
  EXPECT_THAT(Parse({"--count"}).status().message(), HasSubstr("needs a value"));
  EXPECT_THAT(Parse({"--wait=soon"}).status().message(), HasSubstr("--wait=soon"));
}

TEST_F(FlagsTest, OnlyTheKnownFlagsOfASubcommandAreAccepted) {
  FlagRules rules;
  rules.known = {"name"};
  EXPECT_TRUE(Parse({"--name=x"}, rules).ok());
  EXPECT_THAT(Parse({"--count=2"}, rules).status().message(), HasSubstr("unknown flag --count"));
}

TEST_F(FlagsTest, PositionalArgumentsOnlyWhenAllowed) {
  EXPECT_THAT(Parse({"file"}).status().message(), HasSubstr("unexpected argument \"file\""));
  FlagRules rules;
  rules.positional = true;
  absl::StatusOr<ParsedArgs> args = Parse({"a", "--name=x", "-", "--", "--name=y"}, rules);
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positional, ElementsAre("a", "-", "--name=y"));
  EXPECT_EQ(absl::GetFlag(FLAGS_name), "x");
}

TEST_F(FlagsTest, RangesInTheRulesAreCheckedAfterParsing) {
  FlagRules rules;
  rules.ranges = {{"count", 1, 10}};
  EXPECT_TRUE(Parse({"--count=10"}, rules).ok());
  EXPECT_THAT(Parse({"--count=11"}, rules).status().message(),
              HasSubstr("--count=11: expected 1 to 10"));
  EXPECT_TRUE(Parse({"--count=0", "--help"}, rules)->help);
}

TEST_F(FlagsTest, RangesAreCheckedWithAClearMessage) {
  EXPECT_TRUE(CheckRange("threads", 4, 1, 256).ok());
  EXPECT_THAT(CheckRange("threads", 0, 1, 256).message(),
              HasSubstr("--threads=0: expected 1 to 256"));
}

}  // namespace
}  // namespace conet::tools
