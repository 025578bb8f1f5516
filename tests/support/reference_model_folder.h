#pragma once
// A model folder whose model.json points at the reference single-file checkpoint, with the head
// counts the weights cannot say and a word vocabulary small enough for its tiny text encoder: the
// smallest model the real Engine loads (32x32 images, 3 steps by default).

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "reference_vectors.h"
#include "temp_dir.h"

namespace easel::testing {

inline std::filesystem::path referenceModelFolder(const TempDir& dir, const std::string& defaultScheduler) {
    const auto cfg = referenceConfig();
    const nlohmann::json sidecar = {
        {"checkpoint", referenceFile(cfg["checkpoint"]["file"].get<std::string>()).string()},
        {"unet_num_heads", cfg["unet"]["params"]["num_heads"].get<int>()},
        {"text_num_heads", cfg["text_encoder"]["config"]["num_attention_heads"].get<int>()},
        {"default_width", 32},
        {"default_steps", 3},
        {"default_scheduler", defaultScheduler},
        {"tokenizer", {{"type", "easel-word"}, {"file", "tokenizer.json"}}}};
    std::filesystem::create_directories(dir.path() / "tiny");
    dir.write(
        "tiny/tokenizer.json",
        R"({"type": "easel-word", "vocab": ["<|startoftext|>", "<|endoftext|>", "<|unk|>", "a", "red", "circle"]})");
    dir.write("tiny/model.json", sidecar.dump());
    return dir.path() / "tiny";
}

}  // namespace easel::testing
