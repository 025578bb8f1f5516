#pragma once
// Tensor names of a diffusers folder (UNet2DConditionModel, AutoencoderKL, transformers
// CLIPTextModel) and their counterparts in the original single-file layout that Easel's modules
// use (model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*). The same
// table diffusers' convert_ldm_*_checkpoint applies in the other direction. Torch-free.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace easel::inference {

enum class DiffusersComponent { UNet, VAE, TextEncoder, TextEncoder2 };

// What the renaming cannot tell from one key alone; comes from the components' config.json.
struct DiffusersLayout {
    int unetLayersPerBlock = 2;              // resnets per down block (up blocks have one more)
    std::vector<bool> unetUpBlockAttention;  // up_blocks[i] is a CrossAttnUpBlock2D
    int vaeLevels = 4;                       // len(block_out_channels)
    // An SDXL folder (text_encoder_2/): the text encoders sit under sgm's conditioner.embedders.N.
    bool sdxl = false;
};

// Original-layout prefixes of SDXL's two text encoders.
inline constexpr std::string_view kSDXLTextPrefix = "conditioner.embedders.0.transformer.";
inline constexpr std::string_view kSDXLText2Prefix = "conditioner.embedders.1.model.";

// The original key (with its "model.diffusion_model." / "first_stage_model." /
// "cond_stage_model.transformer." prefix) for a key of the component's file; nullopt when the key
// has no counterpart in an SD 1.x / 2.x / XL model. For SDXL's text_encoder_2 (transformers
// CLIPTextModelWithProjection -> open_clip names) only the one-to-one renames are answered: the
// q/k/v projections (fused into in_proj_*) and text_projection (transposed) are the loader's work.
std::optional<std::string> diffusersToOriginalKey(DiffusersComponent component, std::string_view key,
                                                  const DiffusersLayout& layout);

// The inverse: which component and key of a diffusers folder hold an original key; nullopt when
// none does (e.g. the LDM schedule buffers).
struct DiffusersKey {
    DiffusersComponent component;
    std::string key;
};
std::optional<DiffusersKey> originalToDiffusersKey(std::string_view originalKey, const DiffusersLayout& layout);

// The VAE mid-block attention's q/k/v/proj_out weights are Linear [C, C] in diffusers and Conv2d 1x1
// [C, C, 1, 1] in the original layout (same bytes).
bool isOriginalVAEAttentionWeight(std::string_view originalKey);

}  // namespace easel::inference
