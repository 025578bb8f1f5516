// A random-weight SDXL checkpoint (what `easel-bench --family sdxl --write-checkpoint` writes, here with
// the SDXL base geometry scaled down) is read back by detection as the same networks, with the same
// weights, and the Engine loads and generates with it.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "inference/engine.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/loading/checkpoint_writer.h"
#include "temp_dir.h"

using namespace easel::inference;

namespace {

// SDXL base's layout (levels without attention, per-level depth, label_emb, both encoders) at widths a
// test builds in a second.
DetectedModel smallSDXL() {
    auto m = sdxlBaseGeometry();
    m.unet.modelChannels = 32;
    m.unet.channelMult = {1, 2, 2};
    m.unet.numResBlocks = 1;
    m.unet.transformerDepth = {0, 1, 2};
    m.unet.middleTransformerDepth = 2;
    m.unet.numHeadChannels = 16;
    m.text.hiddenSize = 32;
    m.text.intermediateSize = 64;
    m.text.numLayers = 2;
    m.text.numHeads = 2;
    m.text.vocabSize = 16;
    m.text2->hiddenSize = 64;
    m.text2->intermediateSize = 128;
    m.text2->numLayers = 2;
    m.text2->numHeads = 4;
    m.text2->projectionDim = 48;
    m.text2->vocabSize = 16;
    m.unet.contextDim = m.text.hiddenSize + m.text2->hiddenSize;
    m.sizeEmbeddingDim = 8;
    m.unet.admInChannels = m.text2->projectionDim + 6 * m.sizeEmbeddingDim;
    m.vae.ch = 32;
    m.vae.chMult = {1, 1};
    m.vae.numResBlocks = 1;
    return m;
}

TEST(SDXLCheckpointWriter, ARandomSDXLCheckpointReadsBackAsTheSameNetworks) {
    torch::manual_seed(3);
    const auto geometry = smallSDXL();
    auto written = buildRandomModel(geometry);
    easel::testing::TempDir dir;
    const auto file = dir.path() / "random-sdxl.safetensors";
    saveSingleFileCheckpoint(written, file, DType::F32);

    ModelOverrides o;  // what the weights cannot say: the head counts
    o.unetNumHeadChannels = geometry.unet.numHeadChannels;
    o.textNumHeads = geometry.text.numHeads;
    o.text2NumHeads = geometry.text2->numHeads;
    auto read = loadSingleFileCheckpoint(file, o);
    const auto& d = read.detected;
    EXPECT_EQ(d.family, ModelFamily::SDXL);
    EXPECT_EQ(d.unet.attentionLevels, (std::vector<int>{1, 2}));
    EXPECT_EQ(d.unet.transformerDepth, geometry.unet.transformerDepth);
    EXPECT_EQ(d.unet.middleTransformerDepth, geometry.unet.middleTransformerDepth);
    EXPECT_EQ(d.unet.contextDim, geometry.unet.contextDim);
    EXPECT_EQ(d.unet.admInChannels, geometry.unet.admInChannels);
    EXPECT_EQ(d.sizeEmbeddingDim, geometry.sizeEmbeddingDim);
    ASSERT_TRUE(d.text2.has_value());
    EXPECT_EQ(d.text2->numLayers, geometry.text2->numLayers);
    EXPECT_EQ(d.text2->projectionDim, geometry.text2->projectionDim);
    EXPECT_FLOAT_EQ(d.vae.scalingFactor, 0.13025f);

    // The same weights: one UNet pass with the `vector` agrees exactly.
    torch::NoGradGuard noGrad;
    const auto x = torch::randn({1, 4, 8, 8});
    const auto t = torch::full({1}, 300.0f);
    const auto c = torch::randn({1, 5, geometry.unet.contextDim});
    const auto y = torch::randn({1, geometry.unet.admInChannels});
    EXPECT_TRUE(torch::equal(written.unet->forward(x, t, c, y), read.unet->forward(x, t, c, y)));

    // The Engine loads it (SDXL defaults) and draws the requested size.
    std::filesystem::create_directories(dir.path() / "random-sdxl");
    dir.write("random-sdxl/tokenizer.json",
              R"({"type": "easel-word", "vocab": ["<|startoftext|>", "<|endoftext|>", "<|unk|>", "a", "cat"]})");
    dir.write("random-sdxl/model.json",
              nlohmann::json{{"checkpoint", file.string()},
                             {"unet_num_head_channels", *o.unetNumHeadChannels},
                             {"text_num_heads", *o.textNumHeads},
                             {"text2_num_heads", *o.text2NumHeads},
                             {"tokenizer", {{"type", "easel-word"}, {"file", "tokenizer.json"}}}}
                  .dump());
    Engine engine;
    engine.loadModel(dir.path() / "random-sdxl");
    EXPECT_EQ(engine.model().family, "sdxl");
    EXPECT_EQ(engine.model().defaultWidth, 1024);
    GenerationRequest r;
    r.prompt = "a cat";
    r.width = 24;
    r.height = 16;
    r.steps = 1;
    r.seed = 1;
    const auto out = engine.generate(r);
    ASSERT_EQ(out.images.size(), 1u);
    EXPECT_EQ(out.images[0].width, 24);
    EXPECT_EQ(out.images[0].height, 16);
}

}  // namespace
