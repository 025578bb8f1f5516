#pragma once
// Which weight of a loaded SD 1.x / 2.x / XL model each adapter module changes. Derived from the model's
// own keys (original LDM layout) and the diffusers <-> original renaming of diffusers_key_map.h, so
// it follows the model's geometry rather than a fixed table:
//  - UNet: diffusers module path (PEFT "unet.<path>") and kohya "lora_unet_<path with '_'>"; kohya
//    names built from the LDM path ("lora_unet_input_blocks_1_1_proj_in") are accepted too.
//  - SD 1.x text encoder: transformers CLIPTextModel paths ("text_model.encoder.layers.0.mlp.fc1"),
//    kohya "lora_te_text_model_encoder_layers_0_mlp_fc1".
//  - SD 2.x OpenCLIP: the same transformers names (kohya and diffusers train SD 2.x LoRAs on the
//    converted CLIPTextModel); q_proj / k_proj / v_proj change row blocks 0 / 1 / 2 of the fused
//    attn.in_proj_weight [3D, D], out_proj -> attn.out_proj, fc1 -> mlp.c_fc, fc2 -> mlp.c_proj.
//  - SDXL: the UNet as above (kohya trains on sgm module names, "lora_unet_input_blocks_4_1_..."; diffusers
//    on "unet.down_blocks.1...."); text encoder 1 (CLIP ViT-L) as kohya "lora_te1_" / diffusers
//    "text_encoder.", text encoder 2 (OpenCLIP bigG, renamed like SD 2.x's) as "lora_te2_" /
//    "text_encoder_2.". A kohya "lora_te_" module (SD 1.x / 2.x) matches nothing of an SDXL model and
//    SDXL-only names match nothing of an SD 1.x / 2.x one.
// Torch-free.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "inference/adapters/adapter.h"
#include "inference/loading/diffusers_key_map.h"
#include "inference/loading/model_detection.h"

namespace easel::inference {

// How the diffusers names of this model's UNet are laid out (blocks per level, which up blocks attend).
DiffusersLayout diffusersLayoutOf(const DetectedModel& model);

struct AdapterTarget {
    std::string key;  // original-layout weight key, e.g. "model.diffusion_model.out.2.weight"
    AdapterComponent component = AdapterComponent::UNet;
    std::vector<std::int64_t> shape;        // the part the module changes (rows of a fused q/k/v weight)
    std::int64_t rowOffset = 0;             // first row of that part in the weight
    std::vector<std::int64_t> weightShape;  // the whole weight
};

struct ModelWeight {
    std::string key;  // original layout
    std::vector<std::int64_t> shape;
};

class AdapterKeyMap {
public:
    // `weights`: the model's weights under their original keys (others, e.g. norms, are skipped).
    AdapterKeyMap(const DetectedModel& model, const std::vector<ModelWeight>& weights);
    // Every weight of a single-file checkpoint (what loadSingleFileCheckpoint loads).
    static AdapterKeyMap fromCheckpoint(const DetectedModel& model, const SafetensorsFile& file);

    std::optional<AdapterTarget> find(const AdapterModule& module) const;
    ModelFamily family() const { return m_family; }
    // "SD 1.x" / "SD 2.x" / "SDXL"
    std::string modelName() const {
        return m_family == ModelFamily::SD1 ? "SD 1.x" : m_family == ModelFamily::SD2 ? "SD 2.x" : "SDXL";
    }
    std::size_t size() const { return m_targets.size(); }

private:
    void add(AdapterComponent component, const std::string& diffusersPath, AdapterTarget target);
    // An OpenCLIP weight (`rest` after the encoder's prefix) under the transformers names trainers use.
    void addOpenCLIP(AdapterComponent component, const std::string& rest, const AdapterTarget& target);

    ModelFamily m_family = ModelFamily::SD1;
    // "<u|t><k|d>:<path>" (component, naming) -> target
    std::map<std::string, AdapterTarget> m_targets;
};

struct ResolvedModule {
    const AdapterModule* module = nullptr;
    AdapterTarget target;
};

// Every module of `adapter` with its target. Throws AdapterError listing the modules that match no
// weight or whose change has another shape than the weight, with what the file says it was made
// for (an SDXL or SD 2.x LoRA on an SD 1.x model, ...).
std::vector<ResolvedModule> resolveAdapter(const Adapter& adapter, const AdapterKeyMap& map);

// The [rows, columns] a module's change has before it is reshaped to its weight (columns =
// in_channels * kernel size); throws AdapterError for tensors whose shapes do not compose.
std::pair<std::int64_t, std::int64_t> adapterDeltaSize(const Adapter& adapter, const AdapterModule& module);

}  // namespace easel::inference
