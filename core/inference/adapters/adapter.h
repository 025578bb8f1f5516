#pragma once
// A LoRA-family adapter file (LoRA, LoCon, LoHa, LoKr) read and sorted into modules, without libtorch:
// the server can inspect an upload and the engine resolves it against a model (adapter_key_map.h)
// and merges it (adapter_stack.h, libtorch).
//
// Layouts understood, told apart per tensor name, so a file mixing them still reads:
//  - kohya-ss / A1111 (sd-scripts networks/lora.py): "lora_unet_<module path, '.' -> '_'>" and
//    "lora_te_<...>", tensors ".lora_down.weight", ".lora_up.weight", optional ".lora_mid.weight"
//    (LoCon Tucker) and a scalar ".alpha"; scale = alpha / rank, alpha = rank when absent or 0.
//  - LyCORIS with kohya names: LoHa ("hada_w1_a/b", "hada_w2_a/b", optional Tucker "hada_t1/t2"),
//    LoKr ("lokr_w1" or "lokr_w1_a/b", "lokr_w2" or "lokr_w2_a/b", optional "lokr_t2"), full ("diff").
//  - kohya SDXL: "lora_unet_<sgm module path>" ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"),
//    "lora_te1_" (CLIP ViT-L) and "lora_te2_" (OpenCLIP bigG under transformers CLIPTextModel names).
//  - diffusers / PEFT: "unet.<module>.lora_A.weight" / "lora_B.weight", "text_encoder.<module>...",
//    for SDXL also "text_encoder_2.<module>...".
//    Alpha comes from __metadata__ "lora_adapter_metadata" (diffusers' save_lora_weights: per
//    component r, lora_alpha, rank_pattern, alpha_pattern, use_rslora), or per-module ".alpha"
//    tensors; with neither the scale is 1, as in diffusers and PEFT.
//  - older diffusers: "<module>.lora.down.weight", "lora_linear_layer.down.weight" and the attention
//    processor names "...attn1.processor.to_q_lora.down.weight".
// Pickled files (.pt, .ckpt, .bin) are refused: loading them can run arbitrary code.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "inference/loading/safetensors.h"

namespace easel::inference {

// Any problem with an adapter file or with the model it is applied to; the message is for the user
// (the server answers it with a 400).
class AdapterError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// TextEncoder: SD 1.x/2.x's one text encoder, or SDXL's first (CLIP ViT-L); TextEncoder2: SDXL's second
// (OpenCLIP bigG). Unknown: PEFT "base_model.model." names.
enum class AdapterComponent { UNet, TextEncoder, TextEncoder2, Unknown };
enum class AdapterNaming { Kohya, Diffusers };
enum class AdapterAlgorithm { LoRA, LoHa, LoKr, Full };
// What the file says it was made for (kohya's ss_base_model_version / ss_v2, modelspec.architecture,
// SDXL-only key prefixes).
enum class AdapterBase { Unknown, SD1, SD2, SDXL, Other };

struct AdapterModule {
    std::string name;  // as in the file, before the tensor suffix: "lora_unet_mid_block_...", "unet.mid_block...."
    AdapterNaming naming = AdapterNaming::Kohya;
    AdapterComponent component = AdapterComponent::Unknown;
    // Kohya: the name after "lora_unet_" / "lora_te_" (underscores); diffusers: the dotted module path
    // after the component prefix ("down_blocks.0.attentions.0.proj_in").
    std::string path;
    // The name only an SDXL adapter has (kohya "lora_te1_" / "lora_te2_", diffusers "text_encoder_2.",
    // the UNet's label_emb / add_embedding): it matches no weight of an SD 1.x / 2.x model.
    bool sdxlOnly = false;
    AdapterAlgorithm algorithm = AdapterAlgorithm::LoRA;
    // Role -> tensor name in the file. Roles: "down", "up", "mid" (LoRA); "hada_w1_a", ..., "hada_t2";
    // "lokr_w1", ..., "lokr_t2"; "diff".
    std::map<std::string, std::string> tensors;
    std::int64_t rank = 0;  // 0 for a full LoKr or a "diff" module
    double alpha = 0;
    double scale = 1;  // the delta's multiplier at strength 1 (alpha / rank)
};

class Adapter {
public:
    // Throws AdapterError naming the file: not .safetensors, unreadable, not an adapter, a tensor
    // layout Easel does not support (DoRA, OFT, IA3, biases), or inconsistent ranks.
    static Adapter open(const std::filesystem::path& path);

    Adapter(Adapter&&) noexcept;
    Adapter& operator=(Adapter&&) noexcept;
    ~Adapter();

    const std::filesystem::path& path() const;
    std::string name() const;  // the file stem: A1111's <lora:name:strength>
    // "kohya LoRA", "kohya LoRA/LoCon", "LyCORIS LoHa", "diffusers PEFT LoRA", ...
    std::string formatName() const;
    AdapterBase base() const;
    const std::vector<AdapterModule>& modules() const;
    const SafetensorsFile& file() const;
    const std::map<std::string, std::string>& metadata() const;

private:
    struct Impl;
    explicit Adapter(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

std::string_view componentName(AdapterComponent component);  // "UNet", "text encoder", "text encoder 2"

}  // namespace easel::inference
