#pragma once
// A model folder whose model.json points at the tiny SDXL reference checkpoint (reference set "sdxl"),
// with the head counts the weights cannot say and a word vocabulary small enough for its tiny text
// encoders. Every value comes from sdxl/config.json; `extra` adds or replaces sidecar fields (defaults,
// turbo settings). Without "default_width" the Engine's SDXL default (1024) applies.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

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
