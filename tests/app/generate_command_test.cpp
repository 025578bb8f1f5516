// `easel-server generate`: options are checked before the model loads, with messages that name them.

#include "app/generate_command.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace easel::app {
namespace {

std::string usageErrorOf(std::vector<std::string> args) {
    args.insert(args.begin(), "easel-server");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    try {
        runGenerate(ArgList(static_cast<int>(argv.size()), argv.data()), argv[0]);
    } catch (const UsageError& e) {
        return e.what();
    }
    return "no usage error";
}

TEST(GenerateCommand, BadNumbersNameTheOptionBeforeAnyModelLoads) {
    // The model path does not exist: a usage error must come first.
    const std::vector<std::string> base{"generate", "--model", "/nonexistent/model", "--prompt", "a red star"};
    auto with = [&](std::vector<std::string> extra) {
        auto args = base;
        args.insert(args.end(), extra.begin(), extra.end());
        return usageErrorOf(args);
    };
    EXPECT_EQ(with({"--seed", "abc"}), "--seed expects a whole number, got 'abc'");
    EXPECT_EQ(with({"--seed", "12x"}), "--seed expects a whole number, got '12x'");
    EXPECT_EQ(with({"--seed", "99999999999999999999"}), "--seed expects a whole number, got '99999999999999999999'");
    EXPECT_EQ(with({"--steps", "many"}), "--steps expects a whole number, got 'many'");
    EXPECT_EQ(with({"--strength", "half"}), "--strength expects a number, got 'half'");
    EXPECT_EQ(with({"--colour", "red"}), "unknown argument '--colour'");
    EXPECT_EQ(usageErrorOf({"generate", "--model", "/nonexistent/model"}), "generate needs --prompt");
}

TEST(GenerateCommand, SeedsUpToTheInt64RangeParse) {
    const char* argv[] = {"x", "--seed", "9007199254740993", "--other", "-1"};
    const ArgList args(5, const_cast<char**>(argv));
    EXPECT_EQ(args.int64Value("--seed"), 9007199254740993LL);  // beyond a double's exact range
    EXPECT_EQ(args.int64Value("--other"), -1);
    EXPECT_EQ(args.int64Value("--absent"), std::nullopt);
}

}  // namespace
}  // namespace easel::app
