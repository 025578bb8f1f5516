#pragma once
// A model folder whose model.json points at the tiny SDXL reference checkpoint (reference set "sdxl"),
// with the head counts the weights cannot say and a word vocabulary small enough for its tiny text
// encoders. Every value comes from sdxl/config.json; `extra` adds or replaces sidecar fields (defaults,
// turbo settings). Without "default_width" the Engine's SDXL default (1024) applies.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "inference/loading/model_detection.h"
#include "reference_vectors.h"
#include "temp_dir.h"

namespace easel::testing {

// "sdxl/" in the default set; "" when $EASEL_REFERENCE_DIR points at an SDXL set itself.
inline std::string referenceSDXLSet() {
    const std::string marker = "conditioner_vectors.safetensors";
    if (std::filesystem::exists(referenceDir() / "sdxl" / marker)) return "sdxl/";
    if (std::filesystem::exists(referenceDir() / marker)) return "";
    return "sdxl/";  // referenceFile then names what is missing
}

// The CLIP BPE vocabulary: beside the SDXL folder (its README's ../bpe_simple_vocab_16e6.txt.gz) or in it.
inline std::filesystem::path referenceSDXLVocabulary() {
    const std::string name = "bpe_simple_vocab_16e6.txt.gz";
    const auto set = referenceSDXLSet();
    for (const auto& candidate : {referenceDir() / set / ".." / name, referenceDir() / set / name}) {
        if (std::filesystem::exists(candidate)) return candidate;
    }
    return referenceFile(name);  // throws, naming it
}

// The set's single-file checkpoint.
inline std::filesystem::path referenceSDXLCheckpoint() {
    const auto set = referenceSDXLSet();
    return referenceFile(set + referenceJson(set + "config.json").at("checkpoint").at("file").get<std::string>());
}

// What the weights cannot say: head counts (the tiny set uses heads of 16, SDXL 64) and the
// activations of the text encoders.
inline inference::ModelOverrides referenceSDXLOverrides() {
    const auto cfg = referenceJson(referenceSDXLSet() + "config.json");
    inference::ModelOverrides o;
    const auto& p = cfg.at("unet").at("params");
    if (p.value("num_head_channels", -1) > 0) {
        o.unetNumHeadChannels = p["num_head_channels"].get<int>();
    } else {
        o.unetNumHeads = p.at("num_heads").get<int>();
    }
    const auto& text = cfg.at("text_encoder").at("config");
    o.textNumHeads = text.at("num_attention_heads").get<int>();
    o.textQuickGELU = text.at("hidden_act").get<std::string>() == "quick_gelu";
    o.text2NumHeads = cfg.at("text_encoder_2").at("open_clip_text_cfg").at("heads").get<int>();
    o.text2QuickGELU = cfg.at("text_encoder_2").value("quick_gelu", false);
    return o;
}

inline std::filesystem::path referenceSDXLFolder(const TempDir& dir,
                                                 const nlohmann::json& extra = nlohmann::json::object(),
                                                 const std::string& name = "tiny-sdxl") {
    const auto set = referenceSDXLSet();
    const auto cfg = referenceJson(set + "config.json");
    const auto& unet = cfg.at("unet").at("params");
    nlohmann::json sidecar = {
        {"checkpoint", referenceFile(set + cfg.at("checkpoint").at("file").get<std::string>()).string()},
        {"text_num_heads", cfg.at("text_encoder").at("config").at("num_attention_heads").get<int>()},
        {"text2_num_heads", cfg.at("text_encoder_2").at("open_clip_text_cfg").at("heads").get<int>()},
        {"tokenizer", {{"type", "easel-word"}, {"file", "tokenizer.json"}}}};
    if (unet.value("num_head_channels", -1) > 0) {
        sidecar["unet_num_head_channels"] = unet["num_head_channels"].get<int>();
    } else {
        sidecar["unet_num_heads"] = unet.at("num_heads").get<int>();
    }
    sidecar.update(extra);
    std::filesystem::create_directories(dir.path() / name);
    dir.write(
        name + "/tokenizer.json",
        R"({"type": "easel-word", "vocab": ["<|startoftext|>", "<|endoftext|>", "<|unk|>", "a", "red", "circle"]})");
    dir.write(name + "/model.json", sidecar.dump());
    return dir.path() / name;
}

// The image size of the reference pipeline run ([1, 3, H, W]): a size the tiny SDXL model handles.
inline std::pair<int, int> referenceSDXLImageSize() {
    const auto shape =
        referenceJson(referenceSDXLSet() + "config.json").at("pipeline").at("image_shape").get<std::vector<int>>();
    return {shape.at(3), shape.at(2)};
}

}  // namespace easel::testing
