// Tiled VAE decoding (AutoencoderKL::decodeTiled, EngineOptions::vaeTiling) on Easel's trained built-in
// VAE: the blended overlaps leave no seam where hard-cut tiles step, latents of one tile are decoded
// exactly as before, "auto" tiles only what would not fit, and the Engine's tiled images stay close to
// the whole decode at the model's own tile size.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include "builtin_model_dir.h"
#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/pipelines/pipeline.h"

using namespace easel::inference;

namespace {

StableDiffusionModel& builtin() {
    static StableDiffusionModel model = [] {
        const auto dir = easel::testing::builtinModelDir();
        std::ifstream in(dir / "model.json");
        const auto sidecar = nlohmann::json::parse(in);
        ModelOverrides o;
        o.textNumHeads = sidecar.at("text_num_heads").get<int>();
        return loadSingleFileCheckpoint(dir / sidecar.at("checkpoint").get<std::string>(), o);
    }();
    return model;
}

// A 256x256 scene in [-1, 1]: a diagonal gradient with discs and squares in several colours, so that
// edges cross every tile boundary.
torch::Tensor scene(int side) {
    const auto coords = torch::arange(side, torch::kFloat32);
    const auto y = coords.view({side, 1}).expand({side, side});
    const auto x = coords.view({1, side}).expand({side, side});
    auto image = torch::stack({(x + y) / (2.0 * side), 1.0 - y / side, x / side}).unsqueeze(0) * 2 - 1;
    const float colours[][3] = {{1, -1, -1}, {-1, 1, -1}, {-1, -1, 1}, {1, 1, -1}, {1, 1, 1}};
    for (int i = 0; i < 5; ++i) {
        const float cx = side * (0.15f + 0.17f * i), cy = side * (0.8f - 0.15f * i), r = side * 0.11f;
        const auto inside = i % 2 == 0 ? ((x - cx).pow(2) + (y - cy).pow(2)) < r * r
                                       : ((x - cx).abs() < r).logical_and((y - cy).abs() < r);
        for (int c = 0; c < 3; ++c) image[0][c].masked_fill_(inside, colours[i][c]);
    }
    return image;
}

struct Difference {
    double mean = 0;  // in 0..255 units
    double max = 0;
};
Difference differenceOf(const torch::Tensor& a, const torch::Tensor& b) {
    const auto d = (a.clamp(-1, 1) - b.clamp(-1, 1)).abs() * 127.5;
    return {d.mean().item<double>(), d.max().item<double>()};
}

// How much sharper the horizontal step between neighbouring pixel columns is in `tiled` than in
// `whole`, averaged over the columns where tiles meet (`seams`, pixel x of the first column after it).
double seamStep(const torch::Tensor& tiled, const torch::Tensor& whole, const std::vector<std::int64_t>& seams) {
    double total = 0;
    for (const auto x : seams) {
        const auto step = [&](const torch::Tensor& t) { return (t.select(3, x) - t.select(3, x - 1)).abs(); };
        total += ((step(tiled) - step(whole)).abs() * 127.5).mean().item<double>();
    }
    return total / static_cast<double>(seams.size());
}

}  // namespace

TEST(VAETiling, BlendedTilesLeaveNoSeamsAndOneTileIsTheWholeDecode) {
    auto& model = builtin();
    torch::NoGradGuard noGrad;
    const int side = 256;
    const auto latents = model.vae->encode(scene(side)).mean;
    const auto factor = side / latents.size(3);
    ASSERT_EQ(factor, model.detected.vae.downsampleFactor());
    const auto whole = model.vae->decode(latents);

    // Four tiles a side: tile 12 latent positions with 4 shared (a stride of 8, the last one moved back).
    const int tile = static_cast<int>(latents.size(3)) * 3 / 8, overlap = tile / 3;
    const auto tiled = model.vae->decodeTiled(latents, tile, overlap);
    ASSERT_EQ(tiled.sizes(), whole.sizes());
    const auto blended = differenceOf(tiled, whole);
    // The same tiles cut hard at the middle of each overlap instead of blended.
    const auto cut = model.vae->decodeTiled(latents, static_cast<int>(tile - overlap / 2), 0);
    const auto hard = differenceOf(cut, whole);
    std::vector<std::int64_t> seams;  // where the hard-cut tiles meet (the last tile, moved back, overlaps)
    const std::int64_t hardTile = tile - overlap / 2;
    for (std::int64_t s = hardTile; s + hardTile <= latents.size(3); s += hardTile) seams.push_back(s * factor);
    const double blendedSeam = seamStep(tiled, whole, seams), hardSeam = seamStep(cut, whole, seams);
    std::cout << "  tile " << tile << " overlap " << overlap << " (latent): blended mean " << blended.mean << " max "
              << blended.max << " seam step " << blendedSeam << "; hard cut mean " << hard.mean << " max " << hard.max
              << " seam step " << hardSeam << " (0..255)\n";
    // Each tile's GroupNorms and mid-block attention see only that tile; this small VAE leans on them
    // (one tile decoded alone differs from the same corner of the whole decode by tens of levels on
    // average), so the test asks what blending must give: no seam where hard-cut tiles step, and
    // closer to the whole decode than hard-cut tiles of the same stride.
    EXPECT_LT(blendedSeam, hardSeam / 4);
    EXPECT_LT(blended.mean, hard.mean);

    // Non-square latents narrower than a tile on one side, and a batch of two: the same shapes as the
    // whole decode, each sample decoded as it is alone.
    const auto wide = latents.narrow(2, 0, tile / 2);
    const auto wideTiled = model.vae->decodeTiled(wide, tile, overlap);
    EXPECT_EQ(wideTiled.sizes(), model.vae->decode(wide).sizes());
    const auto pair = model.vae->decodeTiled(torch::cat({wide, wide.flip(3)}), tile, overlap);
    ASSERT_EQ(pair.size(0), 2);
    EXPECT_LT((pair[0] - wideTiled[0]).abs().max().item<double>(), 1e-4);
    EXPECT_LT((pair[1] - model.vae->decodeTiled(wide.flip(3), tile, overlap)[0]).abs().max().item<double>(), 1e-4);

    // A decode that fits one tile is the whole decode, bit for bit.
    EXPECT_TRUE(torch::equal(model.vae->decodeTiled(latents, static_cast<int>(latents.size(3)), 4), whole));
    EXPECT_TRUE(torch::equal(model.vae->decodeTiled(latents.narrow(2, 0, tile).narrow(3, 0, tile), tile, overlap),
                             model.vae->decode(latents.narrow(2, 0, tile).narrow(3, 0, tile))));
}

TEST(VAETiling, AutoTilesOnlyADecodeThatWouldNotFitInHalfTheAvailableMemory) {
    const VAEConfig sd;  // SD 1.x / 2.x / XL VAE geometry: 128 channels at full resolution
    constexpr std::uint64_t GiB = 1ull << 30;
    // 12 tensors of 128 x H x W: 1.5 GiB for 512² in fp32 (1.45 GiB measured by easel-bench --vae-tiling).
    EXPECT_FALSE(wholeDecodeTooLarge(sd, 512 * 512, 4, 20 * GiB));
    EXPECT_FALSE(wholeDecodeTooLarge(sd, 1024 * 1024, 4, 20 * GiB));  // 6 GiB
    EXPECT_TRUE(wholeDecodeTooLarge(sd, 2048 * 2048, 4, 20 * GiB));   // 24 GiB
    EXPECT_TRUE(wholeDecodeTooLarge(sd, 2048 * 2048, 2, 20 * GiB));   // 12 GiB in bf16
    EXPECT_TRUE(wholeDecodeTooLarge(sd, 1024 * 1024, 2, 4 * GiB));    // a small machine
    EXPECT_GT(availableMemoryBytes(), 0u);
    EngineOptions bad;
    bad.vaeTiling = "sometimes";
    EXPECT_THROW(Engine{bad}, GenerationError);
    bad.vaeTiling = "always";
    bad.vaeTileOverlap = bad.vaeTileSide;
    EXPECT_THROW(Engine{bad}, GenerationError);
}

TEST(VAETiling, TheEngineTilesWhenToldAndOnlyAboveOneTile) {
    EngineOptions tiledOptions;
    tiledOptions.vaeTiling = "always";
    tiledOptions.vaeTileSide = 64;
    tiledOptions.vaeTileOverlap = 32;
    Engine tiled(tiledOptions);
    Engine whole;
    for (auto* e : {&tiled, &whole}) e->loadModel(easel::testing::builtinModelDir());
    GenerationRequest r;
    r.prompt = "a red circle at the top left and a blue square at the bottom right";
    r.seed = 3;
    r.steps = 8;
    // At the model's 64x64 (one tile) nothing changes.
    EXPECT_EQ(tiled.generate(r).images[0].rgb, whole.generate(r).images[0].rgb);
    // 128x128 decodes in tiles of 64 pixels: close to the whole decode, not equal.
    r.width = 128;
    r.height = 128;
    const auto a = tiled.generate(r).images[0], b = whole.generate(r).images[0];
    ASSERT_EQ(a.rgb.size(), b.rgb.size());
    double sum = 0;
    for (std::size_t i = 0; i < a.rgb.size(); ++i) sum += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
    const double mean = sum / static_cast<double>(a.rgb.size());
    std::cout << "  128x128 tiled vs whole: mean difference " << mean << " (0..255)\n";
    EXPECT_NE(a.rgb, b.rgb);
    EXPECT_LT(mean, 8.0);
}
