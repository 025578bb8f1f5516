// The fast paths of the network blocks against the plain computation they replace: the fused
// nearest-upsample + 3x3 convolution, sliced attention, the float32 norms under bf16, building
// modules directly in a dtype, and channels-last weights.

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include "inference/models/blocks/cpu_kernels.h"
#include "inference/models/blocks/unet_blocks.h"
#include "inference/models/blocks/vae_blocks.h"
#include "inference/models/unet_2d_condition.h"
#include "inference/runtime_info.h"
#include "inference/tensor_utils.h"

using namespace easel::inference;

namespace {

torch::Tensor upsampleThenConv(torch::nn::Conv2d conv, const torch::Tensor& x, std::vector<int64_t> size) {
    namespace F = torch::nn::functional;
    return conv->forward(F::interpolate(x, F::InterpolateFuncOptions().size(size).mode(torch::kNearest)));
}

double maxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
    return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().max().item<double>();
}

torch::Tensor naiveAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int heads,
                             const torch::Tensor& mask = {}) {
    const auto b = q.size(0), d = q.size(2) / heads;
    auto split = [&](const torch::Tensor& t) { return t.view({b, t.size(1), heads, d}).transpose(1, 2); };
    auto scores = torch::matmul(split(q), split(k).transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
    if (mask.defined()) scores = scores + mask;
    return torch::matmul(scores.softmax(-1), split(v)).transpose(1, 2).reshape({b, q.size(1), heads * d});
}

// A GroupNorm with random affine weights, as a trained one has.
torch::nn::GroupNorm randomGroupNorm(int groups, int channels, double eps) {
    torch::nn::GroupNorm gn(torch::nn::GroupNormOptions(groups, channels).eps(eps));
    gn->weight.normal_();
    gn->bias.normal_();
    return gn;
}

}  // namespace

TEST(UpsampleConv2x, EqualsNearestUpsamplingThenTheConvolution) {
    torch::manual_seed(1);
    torch::NoGradGuard noGrad;
    Upsample up(6);
    up->conv->weight.normal_();
    up->conv->bias.normal_();
    for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
        // Odd, non-square sizes reach every border case of the four parities.
        const auto x = torch::randn({2, 6, 5, 7}).contiguous(format);
        const auto expected = upsampleThenConv(up->conv, x, {10, 14});
        const auto got = up->forward(x);
        ASSERT_EQ(got.sizes(), expected.sizes());
        EXPECT_LT(maxAbsDiff(got, expected), 1e-4) << "memory format " << format;
        EXPECT_LT(maxAbsDiff(up->forward(x, {10, 14}), expected), 1e-4);
    }
}

TEST(UpsampleConv2x, FollowsTheWeightsWhenTheyChange) {
    torch::manual_seed(2);
    torch::NoGradGuard noGrad;
    VAEUpsample up(4);
    const auto x = torch::randn({1, 4, 6, 6});
    (void)up->forward(x);                                         // caches the folded weights
    up->conv->weight.copy_(torch::randn_like(up->conv->weight));  // in place, as loading a checkpoint does
    EXPECT_LT(maxAbsDiff(up->forward(x), upsampleThenConv(up->conv, x, {12, 12})), 1e-4);
    useChannelsLast(*up);  // new storage
    up->conv->bias.fill_(3.0);
    EXPECT_LT(maxAbsDiff(up->forward(x), upsampleThenConv(up->conv, x, {12, 12})), 1e-4);
}

TEST(UpsampleConv2x, RunsInBf16CloseToFloat32) {
    torch::manual_seed(3);
    torch::NoGradGuard noGrad;
    Upsample up(8);
    const auto x = torch::randn({1, 8, 9, 4});
    const auto expected = upsampleThenConv(up->conv, x, {18, 8});
    up->to(torch::kBFloat16);
    useChannelsLast(*up);
    const auto got = up->forward(x.to(torch::kBFloat16).contiguous(torch::MemoryFormat::ChannelsLast));
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    EXPECT_LT(maxAbsDiff(got, expected), 0.05 * expected.abs().max().item<double>());
}

TEST(UpsampleConv2x, AnUpsampleToAnOddSizeTakesThePlainPath) {
    torch::manual_seed(4);
    torch::NoGradGuard noGrad;
    Upsample up(3);
    const auto x = torch::randn({1, 3, 5, 5});
    // diffusers' upsample_size: the next skip may be 9x11, not 10x10.
    EXPECT_LT(maxAbsDiff(up->forward(x, {9, 11}), upsampleThenConv(up->conv, x, {9, 11})), 1e-5);
}

TEST(Attention, SlicedAttentionEqualsTheFullSoftmaxOnLongSequences) {
    torch::manual_seed(5);
    torch::NoGradGuard noGrad;
    // 2 x 2 heads x 1500 x 1000 = 6M scores: sliced over heads and over queries.
    const auto q = torch::randn({2, 1500, 32}), k = torch::randn({2, 1000, 32}), v = torch::randn({2, 1000, 32});
    EXPECT_LT(maxAbsDiff(multiHeadAttention(q, k, v, 2), naiveAttention(q, k, v, 2)), 1e-5);
    // Short sequences: several heads per slice.
    const auto qs = torch::randn({3, 77, 64}), ks = torch::randn({3, 77, 64}), vs = torch::randn({3, 77, 64});
    const auto causal = torch::full({77, 77}, -INFINITY).triu(1);
    EXPECT_LT(maxAbsDiff(multiHeadAttention(qs, ks, vs, 4, causal), naiveAttention(qs, ks, vs, 4, causal)), 1e-5);
    EXPECT_LT(maxAbsDiff(multiHeadAttention(qs, ks, vs, 4), naiveAttention(qs, ks, vs, 4)), 1e-5);
}

TEST(Attention, TrainingGradientsOfTheSlicedAttentionMatchTheFullSoftmax) {
    torch::manual_seed(8);
    // 2 heads x 1500 x 1000 scores: sliced over queries, so dK and dV sum over slices; a random upstream
    // gradient, so the softmax backward's row correction matters.
    auto grads = [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& up,
                    bool sliced) {
        auto qq = q.detach().requires_grad_(), kk = k.detach().requires_grad_(), vv = v.detach().requires_grad_();
        const auto out = sliced ? multiHeadAttention(qq, kk, vv, 2) : naiveAttention(qq, kk, vv, 2);
        (out * up).sum().backward();
        return std::vector<torch::Tensor>{out.detach(), qq.grad(), kk.grad(), vv.grad()};
    };
    const auto q = torch::randn({1, 1500, 32}), k = torch::randn({1, 1000, 32}), v = torch::randn({1, 1000, 32});
    const auto up = torch::randn({1, 1500, 32});
    const auto want = grads(q, k, v, up, false);
    const auto got = grads(q, k, v, up, true);
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_LT(maxAbsDiff(got[i], want[i]), 1e-4 * (1 + want[i].abs().max().item<double>())) << "tensor " << i;
    }
    // bf16, as a LoRA trains on a bf16 base: close to the float32 gradients. Only where Easel runs bf16
    // (AVX-512 BF16 or AMX): elsewhere bf16 falls back to fp32 (EnginePrecision), and libtorch's
    // emulated bf16 matmuls there round their sums in bf16 (errors of ~5% of the largest gradient).
    if (!cpuHasFastBF16()) {
        std::cout << "  bf16 part not run: this CPU has no fast bf16, where Easel trains and runs in fp32\n";
        return;
    }
    const auto bf = [](const torch::Tensor& t) { return t.to(torch::kBFloat16); };
    const auto low = grads(bf(q), bf(k), bf(v), bf(up), true);
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(low[i].scalar_type(), torch::kBFloat16);
        EXPECT_LT(maxAbsDiff(low[i], want[i]), 0.03 * want[i].abs().max().item<double>()) << "bf16 tensor " << i;
    }
}

TEST(Attention, Bf16AttentionStaysCloseToFloat32) {
    torch::manual_seed(6);
    torch::NoGradGuard noGrad;
    const auto q = torch::randn({1, 2048, 80}), k = torch::randn({1, 2048, 80}), v = torch::randn({1, 2048, 80});
    const auto expected = naiveAttention(q, k, v, 2);
    const auto got = multiHeadAttention(q.to(torch::kBFloat16), k.to(torch::kBFloat16), v.to(torch::kBFloat16), 2);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    EXPECT_LT(maxAbsDiff(got, expected), 0.05);
}

TEST(Norms, Float32NormsUnderBf16MatchTheFloat32Computation) {
    torch::manual_seed(7);
    torch::NoGradGuard noGrad;
    auto gn = randomGroupNorm(4, 16, 1e-5);
    const auto x = torch::randn({2, 16, 6, 5}) * 3 + 1;
    const auto expected = torch::silu(gn(x));
    EXPECT_LT(maxAbsDiff(groupNormSiLU(gn, x), expected), 1e-6);
    torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({24}));
    ln->weight.normal_();
    const auto t = torch::randn({2, 7, 24});
    const auto lnExpected = ln(t);
    gn->to(torch::kBFloat16);
    ln->to(torch::kBFloat16);
    const auto xb = x.to(torch::kBFloat16).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto got = groupNormSiLU(gn, xb);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    // The inputs' own bf16 rounding (2^-8 relative) is most of the difference.
    EXPECT_LT(maxAbsDiff(got, expected), 0.1);
    const auto lnGot = layerNormFloat32(ln, t.to(torch::kBFloat16));
    EXPECT_EQ(lnGot.scalar_type(), torch::kBFloat16);
    EXPECT_LT(maxAbsDiff(lnGot, lnExpected), 0.1);
}

TEST(Norms, Bf16GroupNormSiLUMergesItsStatisticsOverPixelBlocks) {
    torch::manual_seed(9);
    torch::NoGradGuard noGrad;
    auto gn = randomGroupNorm(32, 64, 1e-6);
    // 20000 pixels x 64 channels: two blocks of pixels, and a mean far from zero next to a small
    // spread, where a one-pass E[x^2] - E[x]^2 would lose the variance.
    const auto x =
        (torch::randn({1, 64, 200, 100}) * 0.5 + 50).to(torch::kBFloat16).contiguous(torch::MemoryFormat::ChannelsLast);
    // The exact answer: the same bf16 inputs, normalised in float64.
    const auto expected =
        torch::silu(torch::group_norm(x.to(torch::kFloat64).contiguous(), 32, gn->weight.to(torch::kFloat64),
                                      gn->bias.to(torch::kFloat64), 1e-6))
            .to(torch::kFloat32);
    gn->to(torch::kBFloat16);
    const auto got = groupNormSiLU(gn, x);
    EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(got.is_contiguous(torch::MemoryFormat::ChannelsLast));
    // Within bf16 rounding of the output and of the affine weights.
    const auto err = (got.to(torch::kFloat32) - expected).abs() - 0.02 * expected.abs();
    EXPECT_LT(err.max().item<double>(), 0.02);
}

TEST(ModuleBuilding, ADefaultDtypeGuardBuildsModulesInThatDtypeAndRestoresTheDefault) {
    {
        DefaultDtypeGuard guard(torch::kBFloat16);
        VAEResnetBlock block(8, 16);
        for (const auto& p : block->parameters()) EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
        EXPECT_EQ(torch::randn({2}).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(torch::randn({2}).scalar_type(), torch::kFloat32);
    EXPECT_EQ(VAEResnetBlock(8, 16)->conv1->weight.scalar_type(), torch::kFloat32);
}

TEST(ModuleBuilding, ChannelsLastWeightsGiveTheSameOutputs) {
    torch::manual_seed(8);
    torch::NoGradGuard noGrad;
    VAEResnetBlock block(32, 64);
    const auto x = torch::randn({1, 32, 10, 10});
    const auto expected = block->forward(x);
    useChannelsLast(*block);
    EXPECT_TRUE(block->conv1->weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(block->nin_shortcut->weight.is_contiguous(torch::MemoryFormat::ChannelsLast));
    const auto got = block->forward(x);
    EXPECT_LT(maxAbsDiff(got, expected), 1e-5);
}

TEST(Training, GradientsFlowThroughTheUpsampleAndTheSlicedAttention) {
    // easel-train trains these blocks: the inference shortcuts (cached folded weights, bmm_out,
    // in-place GroupNorm) must step aside when autograd is on.
    torch::manual_seed(10);
    Upsample up(4);
    const auto x = torch::randn({1, 4, 5, 6});
    up->forward(x).square().sum().backward();
    ASSERT_TRUE(up->conv->weight.grad().defined());
    const auto fusedGrad = up->conv->weight.grad().clone();
    up->conv->weight.mutable_grad().zero_();
    upsampleThenConv(up->conv, x, {10, 12}).square().sum().backward();
    EXPECT_LT(maxAbsDiff(fusedGrad, up->conv->weight.grad()), 1e-4);

    auto q = torch::randn({1, 1500, 16}, torch::requires_grad());
    const auto k = torch::randn({1, 1000, 16}), v = torch::randn({1, 1000, 16});
    multiHeadAttention(q, k, v, 2).sum().backward();
    const auto slicedGrad = q.grad().clone();
    q.mutable_grad().zero_();
    naiveAttention(q, k, v, 2).sum().backward();
    EXPECT_LT(maxAbsDiff(slicedGrad, q.grad()), 1e-5);
}

// The attention's bf16 softmax kernel against libtorch's float32 softmax of the same bf16 scores: each
// probability within bf16's rounding (2^-8 relative) whatever the row length (tails of 16 lanes
// included), masked (-inf) entries 0, a row of -inf only all 0.
TEST(CpuKernels, SoftmaxRowsBF16IsTheFloat32SoftmaxRoundedToBF16) {
    if (!kernels::available()) GTEST_SKIP() << "this CPU has no AVX-512 (the kernel is not used here)";
    torch::manual_seed(3);
    for (const std::int64_t cols : {4096, 77, 16, 33, 1}) {
        const std::int64_t rows = 37;
        auto x = (torch::randn({rows, cols}) * 6).to(torch::kBFloat16);
        x.index_put_({5, torch::indexing::Slice(0, cols / 2)}, -std::numeric_limits<float>::infinity());
        x.index_put_({9}, -std::numeric_limits<float>::infinity());
        auto want = x.to(torch::kFloat32).softmax(-1);
        want.index_put_({9}, 0.0f);  // libtorch gives NaN for a row with nothing to attend to
        auto got = x.clone();
        kernels::softmaxRowsBF16(reinterpret_cast<std::uint16_t*>(got.data_ptr<at::BFloat16>()), rows, cols);
        const auto g = got.to(torch::kFloat32);
        const auto excess = ((g - want).abs() - want * (1.0 / 256) - 1e-30).max().item<double>();
        EXPECT_LE(excess, 0.0) << cols << " columns";
        if (cols > 1) {
            EXPECT_EQ(g[5].slice(0, 0, cols / 2).abs().max().item<float>(), 0.0f);
        }
        EXPECT_EQ(g[9].abs().max().item<float>(), 0.0f);
        EXPECT_NEAR(g[0].sum().item<double>(), 1.0, 0.01);
    }
}

// The GroupNorm (+ SiLU) kernel against libtorch's float32 group_norm (+ silu) of the same bf16 input,
// on data far from zero mean (where one-pass sums lose digits), two samples, several group widths.
TEST(CpuKernels, GroupNormChannelsLastBF16IsTheFloat32GroupNormRoundedToBF16) {
    if (!kernels::available()) GTEST_SKIP() << "this CPU has no AVX-512 (the kernel is not used here)";
    torch::manual_seed(5);
    for (const std::int64_t channels : {32, 64, 320}) {
        const auto x = (torch::randn({2, channels, 7, 5}) * 0.5 + 3)
                           .to(torch::kBFloat16)
                           .contiguous(torch::MemoryFormat::ChannelsLast);
        const auto gamma = torch::randn({channels}) * 0.5 + 1, beta = torch::randn({channels}) * 0.2;
        for (const bool silu : {false, true}) {
            auto want = torch::group_norm(x.to(torch::kFloat32), 32, gamma, beta, 1e-6);
            if (silu) want = torch::silu(want);
            auto out = torch::empty_like(x);
            kernels::groupNormChannelsLastBF16(reinterpret_cast<const std::uint16_t*>(x.data_ptr<at::BFloat16>()),
                                               reinterpret_cast<std::uint16_t*>(out.data_ptr<at::BFloat16>()), 2, 35,
                                               channels, 32, gamma.data_ptr<float>(), beta.data_ptr<float>(), 1e-6,
                                               silu);
            const auto excess = ((out.to(torch::kFloat32) - want).abs() - want.abs() * (1.0 / 256) - 2e-3).max();
            EXPECT_LE(excess.item<double>(), 0.0) << channels << " channels, silu " << silu;
        }
    }
    // The model's entry points take it for channels-last bf16 inference and agree with the float32 path.
    torch::NoGradGuard noGrad;
    torch::nn::GroupNorm norm(torch::nn::GroupNormOptions(32, 64).eps(1e-5));
    const auto x = torch::randn({1, 64, 8, 8}).to(torch::kBFloat16).contiguous(torch::MemoryFormat::ChannelsLast);
    const auto want = torch::silu(norm(x.to(torch::kFloat32)));
    norm->to(torch::kBFloat16);
    const auto got = groupNormSiLU(norm, x).to(torch::kFloat32);
    EXPECT_LE(((got - want).abs() - want.abs() * (1.0 / 256) - 2e-3).max().item<double>(), 0.0);
}

// Gradient checkpointing changes memory, not results: a small SD-layout UNet's parameter gradients and
// the context's gradient are the same with and without it, in float32 and under bf16 autocast.
TEST(GradientCheckpointing, GivesTheSameGradientsAsKeepingEveryActivation) {
    UNetConfig c;
    c.modelChannels = 32;
    c.channelMult = {1, 2};
    c.numResBlocks = 1;
    c.attentionLevels = {0, 1};
    c.numHeads = 2;
    c.contextDim = 24;
    torch::manual_seed(1);
    UNet2DConditionModel unet(c);
    const auto x = torch::randn({2, 4, 8, 8});
    const auto t = torch::tensor({10.0f, 700.0f});
    const auto target = torch::randn({2, 4, 8, 8});
    for (const bool autocast : {false, true}) {
        auto grads = [&](bool checkpoint) {
            unet->zero_grad();
            unet->gradientCheckpointing = checkpoint;
            torch::manual_seed(2);
            auto context = torch::randn({2, 5, 24}).requires_grad_(true);
            at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
            at::autocast::set_cpu_enabled(autocast);
            const auto loss = (unet->forward(x, t, context).to(torch::kFloat32) - target).square().mean();
            at::autocast::set_cpu_enabled(false);
            at::autocast::clear_cache();
            loss.backward();
            std::vector<torch::Tensor> out{context.grad().clone()};
            for (const auto& p : unet->parameters()) out.push_back(p.grad().defined() ? p.grad().clone() : p.grad());
            return out;
        };
        const auto plain = grads(false);
        const auto checkpointed = grads(true);
        unet->gradientCheckpointing = false;
        ASSERT_EQ(plain.size(), checkpointed.size());
        // Relative to each gradient's size, with a floor for gradients that are ~0 in exact arithmetic
        // (e.g. the key bias: softmax ignores a constant shift), which carry only rounding noise. bf16
        // autocast rounds the recomputation's matmuls afresh (and inference kernels run the no-grad pass).
        double largest = 0;
        for (const auto& g : plain)
            if (g.defined()) largest = std::max(largest, g.abs().max().item<double>());
        int compared = 0;
        for (std::size_t i = 0; i < plain.size(); ++i) {
            ASSERT_EQ(plain[i].defined(), checkpointed[i].defined()) << i;
            if (!plain[i].defined()) continue;
            const double scale = std::max(plain[i].abs().max().item<double>(), (autocast ? 2e-2 : 1e-2) * largest);
            EXPECT_LE((plain[i] - checkpointed[i]).abs().max().item<double>(), (autocast ? 5e-2 : 1e-5) * scale)
                << "gradient " << i << (autocast ? " (bf16 autocast)" : "");
            ++compared;
        }
        EXPECT_GT(compared, 50);
    }
}
