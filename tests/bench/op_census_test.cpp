// The census easel-bench --roofline builds its floor from: every FLOP-heavy call counted once, with
// the FLOPs of its shape, whatever operator spells it.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "op_census.h"

namespace easel::bench {
namespace {

TEST(OpCensus, CountsEachConvLinearAndAttentionProductOnceWithItsFlops) {
    torch::NoGradGuard noGrad;
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 4, 3).padding(1));
    torch::nn::Conv2d down(torch::nn::Conv2dOptions(8, 4, 3).stride(2).padding(1).bias(false));
    torch::nn::Linear linear(8, 6);
    const auto image = torch::randn({1, 8, 16, 16});
    const auto tokens = torch::randn({2, 5, 8});  // a 3-D input: nn::Linear reaches aten::matmul
    const auto flat = torch::randn({3, 8});       // 2-D: aten::addmm
    const auto q = torch::randn({3, 4, 5}), k = torch::randn({3, 7, 5});
    const auto census = takeCensus([&] {
        (void)conv(image);
        (void)conv(image);
        (void)down(image);
        (void)linear(tokens);
        (void)linear(flat);
        (void)torch::bmm(q, k.transpose(1, 2));
        (void)torch::relu(image);  // not counted
    });
    // conv: 2 * out pixels * weight elements; stride 2 halves each side.
    EXPECT_DOUBLE_EQ(census.flops(OpCategory::Conv), 2 * (2.0 * 16 * 16 * 4 * 8 * 9) + 2.0 * 8 * 8 * 4 * 8 * 9);
    EXPECT_DOUBLE_EQ(census.flops(OpCategory::Linear), 2.0 * 10 * 6 * 8 + 2.0 * 3 * 6 * 8);
    EXPECT_DOUBLE_EQ(census.flops(OpCategory::Attention), 2.0 * 3 * 4 * 5 * 7);
    std::int64_t convCalls = 0, calls = 0;
    for (const auto& [shape, tally] : census.ops) {
        calls += tally.count;
        if (shape.category == OpCategory::Conv) {
            convCalls += tally.count;
            EXPECT_EQ(shape.convParams.size(), 7u);
        }
        EXPECT_GE(tally.seconds, 0.0);
    }
    EXPECT_EQ(convCalls, 3);
    EXPECT_EQ(calls, 6);               // nothing inside linear or conv counted twice
    EXPECT_EQ(census.ops.size(), 5u);  // the two identical conv calls share one shape
    EXPECT_GT(census.totalSeconds, 0.0);
    // Everything called at the top, counted or not, by name: the "other ops" of the roofline.
    ASSERT_TRUE(census.topLevel.contains("aten::relu"));
    EXPECT_EQ(census.topLevel.at("aten::relu").count, 1);
}

TEST(OpCensus, ReplaysEveryShapeItRecordedIncludingTransposedOperands) {
    torch::NoGradGuard noGrad;
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 4, 3).padding(1));
    torch::nn::Linear linear(8, 6);
    const auto image = torch::randn({1, 8, 16, 16}).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto q = torch::randn({3, 4, 5}), k = torch::randn({3, 7, 5}), mask = torch::zeros({1, 4, 7});
    const auto census = takeCensus([&] {
        (void)conv(image);
        (void)linear(torch::randn({2, 5, 8}));
        (void)torch::baddbmm(mask.expand({3, 4, 7}), q, k.transpose(1, 2));
    });
    ASSERT_EQ(census.ops.size(), 3u);
    for (const auto& [shape, tally] : census.ops) EXPECT_GT(replaySeconds(shape, 1), 0.0) << shape.op;
}

}  // namespace
}  // namespace easel::bench
