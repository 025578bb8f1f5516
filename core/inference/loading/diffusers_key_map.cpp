#include "inference/loading/diffusers_key_map.h"

#include <array>
#include <charconv>
#include <span>
#include <utility>

namespace easel::inference {
namespace {

constexpr std::string_view kUNetPrefix = "model.diffusion_model.";
constexpr std::string_view kVAEPrefix = "first_stage_model.";
constexpr std::string_view kTextPrefix = "cond_stage_model.transformer.";

// Pairs of (diffusers name, original name) for the leading part of a key.
using Renames = std::span<const std::pair<std::string_view, std::string_view>>;

// SDXL's label_emb is add_embedding (addition_embed_type "text_time") or, as diffusers' converter
// names it for contexts other than SDXL's own widths, class_embedding (class_embed_type "projection").
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kUNetLabel{{
    {"add_embedding.linear_1", "label_emb.0.0"},
    {"add_embedding.linear_2", "label_emb.0.2"},
    {"class_embedding.linear_1", "label_emb.0.0"},
    {"class_embedding.linear_2", "label_emb.0.2"},
}};
constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kUNetTop{{
    {"time_embedding.linear_1", "time_embed.0"},
    {"time_embedding.linear_2", "time_embed.2"},
    {"conv_in", "input_blocks.0.0"},
    {"conv_norm_out", "out.0"},
    {"conv_out", "out.2"},
}};
// diffusers ResnetBlock2D -> ldm ResBlock (openaimodel.py: in_layers = [norm, SiLU, conv], emb_layers =
// [SiLU, linear], out_layers = [norm, SiLU, dropout, conv]).
constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kUNetResnet{{
    {"norm1", "in_layers.0"},
    {"conv1", "in_layers.2"},
    {"time_emb_proj", "emb_layers.1"},
    {"norm2", "out_layers.0"},
    {"conv2", "out_layers.3"},
    {"conv_shortcut", "skip_connection"},
}};
constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kVAETop{{
    {"conv_in", "conv_in"},
    {"conv_out", "conv_out"},
    {"conv_norm_out", "norm_out"},
}};
constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kVAEResnet{{
    {"norm1", "norm1"},
    {"conv1", "conv1"},
    {"norm2", "norm2"},
    {"conv2", "conv2"},
    {"conv_shortcut", "nin_shortcut"},
}};
// The first five are today's diffusers names; the last four the names of folders saved before
// diffusers 0.14, which are still common. The inverse finds the first match, i.e. today's names.
constexpr std::array<std::pair<std::string_view, std::string_view>, 9> kVAEAttention{{
    {"group_norm", "norm"},
    {"to_q", "q"},
    {"to_k", "k"},
    {"to_v", "v"},
    {"to_out.0", "proj_out"},
    {"query", "q"},
    {"key", "k"},
    {"value", "v"},
    {"proj_attn", "proj_out"},
}};

// Replaces the leading name of `rest` ("conv1.weight" -> "in_layers.2.weight"); forward goes
// diffusers -> original. Only whole dotted components match, and something must follow.
std::optional<std::string> renameLeading(std::string_view rest, Renames table, bool forward) {
    for (const auto& [diffusers, original] : table) {
        const auto from = forward ? diffusers : original;
        const auto to = forward ? original : diffusers;
        if (rest.size() > from.size() + 1 && rest.starts_with(from) && rest[from.size()] == '.') {
            return std::string(to) + std::string(rest.substr(from.size()));
        }
    }
    return std::nullopt;
}

std::vector<std::string_view> split(std::string_view key) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        const auto dot = key.find('.', start);
        parts.push_back(key.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
        if (dot == std::string_view::npos) return parts;
        start = dot + 1;
    }
}

// The key from part `from` on ("a.b.c", 1 -> "b.c").
std::string_view tail(std::string_view key, const std::vector<std::string_view>& parts, std::size_t from) {
    if (from >= parts.size()) return {};
    return key.substr(static_cast<std::size_t>(parts[from].data() - key.data()));
}

std::optional<int> number(std::string_view s) {
    int value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || value < 0) return std::nullopt;
    return value;
}

std::optional<std::string> prefixed(std::string_view prefix, const std::optional<std::string>& key) {
    if (!key) return std::nullopt;
    return std::string(prefix) + *key;
}

std::string str(std::string_view a, int n, std::string_view b) {
    return std::string(a) + std::to_string(n) + std::string(b);
}

std::optional<std::string> unetToOriginal(std::string_view key, const DiffusersLayout& layout) {
    if (auto top = renameLeading(key, kUNetTop, true)) return top;
    if (layout.sdxl) {
        if (auto label = renameLeading(key, kUNetLabel, true)) return label;
    }
    const auto p = split(key);
    const int perDown = layout.unetLayersPerBlock + 1;  // resnets + the downsampler's own block
    if (p[0] == "mid_block" && p.size() >= 4) {
        const auto j = number(p[2]);
        const auto rest = tail(key, p, 3);
        if (!j) return std::nullopt;
        if (p[1] == "resnets" && *j <= 1) {
            return prefixed(str("middle_block.", 2 * *j, "."), renameLeading(rest, kUNetResnet, true));
        }
        if (p[1] == "attentions" && *j == 0) return "middle_block.1." + std::string(rest);
        return std::nullopt;
    }
    if (p.size() < 5 || (p[0] != "down_blocks" && p[0] != "up_blocks")) return std::nullopt;
    const auto i = number(p[1]);
    const auto j = number(p[3]);
    const auto rest = tail(key, p, 4);
    if (!i || !j) return std::nullopt;
    const int L = layout.unetLayersPerBlock;
    if (p[0] == "down_blocks") {
        const int n = 1 + *i * perDown + *j;
        if (p[2] == "resnets" && *j < L)
            return prefixed(str("input_blocks.", n, ".0."), renameLeading(rest, kUNetResnet, true));
        if (p[2] == "attentions" && *j < L) return str("input_blocks.", n, ".1.") + std::string(rest);
        if (p[2] == "downsamplers" && *j == 0 && rest.starts_with("conv."))
            return str("input_blocks.", (*i + 1) * perDown, ".0.op.") + std::string(rest.substr(5));
        return std::nullopt;
    }
    // Up blocks have L + 1 resnets each; output_blocks count up from the lowest resolution too.
    const int n = *i * perDown + *j;
    if (p[2] == "resnets" && *j <= L)
        return prefixed(str("output_blocks.", n, ".0."), renameLeading(rest, kUNetResnet, true));
    if (p[2] == "attentions" && *j <= L) return str("output_blocks.", n, ".1.") + std::string(rest);
    if (p[2] == "upsamplers" && *j == 0 && rest.starts_with("conv.")) {
        const auto ui = static_cast<std::size_t>(*i);
        const bool attention = ui < layout.unetUpBlockAttention.size() && layout.unetUpBlockAttention[ui];
        return str("output_blocks.", *i * perDown + L, attention ? ".2." : ".1.") + std::string(rest);
    }
    return std::nullopt;
}

std::optional<std::string> unetToDiffusers(std::string_view key, const DiffusersLayout& layout) {
    if (auto top = renameLeading(key, kUNetTop, false)) return top;
    if (auto label = renameLeading(key, kUNetLabel, false)) return label;
    const auto p = split(key);
    if (p.size() < 3) return std::nullopt;
    const auto n = number(p[1]);
    if (!n) return std::nullopt;
    const int perDown = layout.unetLayersPerBlock + 1;
    if (p[0] == "middle_block") {
        const auto rest = tail(key, p, 2);
        if (*n == 1) return "mid_block.attentions.0." + std::string(rest);
        if (*n == 0 || *n == 2)
            return prefixed(str("mid_block.resnets.", *n / 2, "."), renameLeading(rest, kUNetResnet, false));
        return std::nullopt;
    }
    if (p.size() < 4) return std::nullopt;
    const auto sub = number(p[2]);
    const auto rest = tail(key, p, 3);
    if (!sub) return std::nullopt;
    if (p[0] == "input_blocks" && *n >= 1) {
        const int i = (*n - 1) / perDown, j = (*n - 1) % perDown;
        if (j == layout.unetLayersPerBlock) {
            if (*sub == 0 && rest.starts_with("op."))
                return str("down_blocks.", i, ".downsamplers.0.conv.") + std::string(rest.substr(3));
            return std::nullopt;
        }
        const std::string block = str("down_blocks.", i, "");
        if (*sub == 0) return prefixed(str(block + ".resnets.", j, "."), renameLeading(rest, kUNetResnet, false));
        if (*sub == 1) return str(block + ".attentions.", j, ".") + std::string(rest);
        return std::nullopt;
    }
    if (p[0] == "output_blocks") {
        const int i = *n / perDown, j = *n % perDown;
        const std::string block = str("up_blocks.", i, "");
        // An attention block has no "conv"; the upsampler follows the resnet (and the attention, if any).
        if ((*sub == 1 || *sub == 2) && rest.starts_with("conv.")) return block + ".upsamplers.0." + std::string(rest);
        if (*sub == 0) return prefixed(str(block + ".resnets.", j, "."), renameLeading(rest, kUNetResnet, false));
        if (*sub == 1) return str(block + ".attentions.", j, ".") + std::string(rest);
    }
    return std::nullopt;
}

// transformers CLIPTextModel(WithProjection) -> open_clip text tower, the renames that are one to one.
constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kOpenCLIPLayer{{
    {"self_attn.out_proj", "attn.out_proj"},
    {"layer_norm1", "ln_1"},
    {"layer_norm2", "ln_2"},
    {"mlp.fc1", "mlp.c_fc"},
    {"mlp.fc2", "mlp.c_proj"},
}};

std::optional<std::string> openClipToOriginal(std::string_view key) {
    if (key == "text_model.embeddings.token_embedding.weight") return std::string("token_embedding.weight");
    if (key == "text_model.embeddings.position_embedding.weight") return std::string("positional_embedding");
    if (key.starts_with("text_model.final_layer_norm."))
        return "ln_final." + std::string(key.substr(std::string_view("text_model.final_layer_norm.").size()));
    const auto p = split(key);
    if (p.size() < 6 || p[0] != "text_model" || p[1] != "encoder" || p[2] != "layers") return std::nullopt;
    const auto n = number(p[3]);
    if (!n) return std::nullopt;
    return prefixed(str("transformer.resblocks.", *n, "."), renameLeading(tail(key, p, 4), kOpenCLIPLayer, true));
}

std::optional<std::string> openClipToDiffusers(std::string_view key) {
    if (key == "token_embedding.weight") return std::string("text_model.embeddings.token_embedding.weight");
    if (key == "positional_embedding") return std::string("text_model.embeddings.position_embedding.weight");
    if (key == "text_projection") return std::string("text_projection.weight");
    if (key.starts_with("ln_final."))
        return "text_model.final_layer_norm." + std::string(key.substr(std::string_view("ln_final.").size()));
    const auto p = split(key);
    if (p.size() < 5 || p[0] != "transformer" || p[1] != "resblocks") return std::nullopt;
    const auto n = number(p[2]);
    if (!n) return std::nullopt;
    const auto rest = tail(key, p, 3);
    // The fused projection is three tensors of the folder; name the first.
    if (rest.starts_with("attn.in_proj_"))
        return str("text_model.encoder.layers.", *n, ".self_attn.q_proj.") +
               std::string(rest.substr(std::string_view("attn.in_proj_").size()));
    return prefixed(str("text_model.encoder.layers.", *n, "."), renameLeading(rest, kOpenCLIPLayer, false));
}

std::optional<std::string> vaeAttention(std::string_view head, std::string_view rest, bool forward) {
    return prefixed(head, renameLeading(rest, kVAEAttention, forward));
}

std::optional<std::string> vaeToOriginal(std::string_view key, const DiffusersLayout& layout) {
    const auto p = split(key);
    if (p[0] == "quant_conv" || p[0] == "post_quant_conv") return std::string(key);
    if (p.size() < 3 || (p[0] != "encoder" && p[0] != "decoder")) return std::nullopt;
    const std::string side = std::string(p[0]) + ".";
    const auto body = tail(key, p, 1);
    if (auto top = renameLeading(body, kVAETop, true)) return side + *top;
    if (p[1] == "mid_block" && p.size() >= 5) {
        const auto j = number(p[3]);
        const auto rest = tail(key, p, 4);
        if (!j) return std::nullopt;
        if (p[2] == "resnets" && *j <= 1)
            return prefixed(str(side + "mid.block_", *j + 1, "."), renameLeading(rest, kVAEResnet, true));
        if (p[2] == "attentions" && *j == 0) return vaeAttention(side + "mid.attn_1.", rest, true);
        return std::nullopt;
    }
    const bool down = p[0] == "encoder" && p[1] == "down_blocks";
    const bool up = p[0] == "decoder" && p[1] == "up_blocks";
    if (p.size() < 6 || !(down || up)) return std::nullopt;
    const auto i = number(p[2]);
    const auto j = number(p[4]);
    const auto rest = tail(key, p, 5);
    if (!i || !j || *i >= layout.vaeLevels) return std::nullopt;
    // The decoder's up blocks run from the lowest resolution in diffusers, from the highest in ldm.
    const std::string level = side + (down ? str("down.", *i, ".") : str("up.", layout.vaeLevels - 1 - *i, "."));
    if (p[3] == "resnets") return prefixed(str(level + "block.", *j, "."), renameLeading(rest, kVAEResnet, true));
    if (p[3] == "attentions") return vaeAttention(str(level + "attn.", *j, "."), rest, true);
    if ((p[3] == "downsamplers" || p[3] == "upsamplers") && *j == 0 && rest.starts_with("conv."))
        return level + (down ? "downsample." : "upsample.") + std::string(rest);
    return std::nullopt;
}

std::optional<std::string> vaeToDiffusers(std::string_view key, const DiffusersLayout& layout) {
    const auto p = split(key);
    if (p[0] == "quant_conv" || p[0] == "post_quant_conv") return std::string(key);
    if (p.size() < 3 || (p[0] != "encoder" && p[0] != "decoder")) return std::nullopt;
    const std::string side = std::string(p[0]) + ".";
    const auto body = tail(key, p, 1);
    if (auto top = renameLeading(body, kVAETop, false)) return side + *top;
    if (p[1] == "mid") {
        const auto rest = tail(key, p, 3);
        if (p[2] == "block_1" || p[2] == "block_2") {
            const int j = p[2] == "block_1" ? 0 : 1;
            return prefixed(str(side + "mid_block.resnets.", j, "."), renameLeading(rest, kVAEResnet, false));
        }
        if (p[2] == "attn_1") return vaeAttention(side + "mid_block.attentions.0.", rest, false);
        return std::nullopt;
    }
    const bool down = p[0] == "encoder" && p[1] == "down";
    const bool up = p[0] == "decoder" && p[1] == "up";
    if (p.size() < 5 || !(down || up)) return std::nullopt;
    const auto n = number(p[2]);
    if (!n || *n >= layout.vaeLevels) return std::nullopt;
    const std::string level =
        side + (down ? str("down_blocks.", *n, ".") : str("up_blocks.", layout.vaeLevels - 1 - *n, "."));
    if (p[3] == "downsample" || p[3] == "upsample")
        return level + (down ? "downsamplers.0." : "upsamplers.0.") + std::string(tail(key, p, 4));
    const auto j = number(p[4]);
    const auto rest = tail(key, p, 5);
    if (!j || p.size() < 6) return std::nullopt;
    if (p[3] == "block") return prefixed(str(level + "resnets.", *j, "."), renameLeading(rest, kVAEResnet, false));
    if (p[3] == "attn") return vaeAttention(str(level + "attentions.", *j, "."), rest, false);
    return std::nullopt;
}

}  // namespace

std::optional<std::string> diffusersToOriginalKey(DiffusersComponent component, std::string_view key,
                                                  const DiffusersLayout& layout) {
    switch (component) {
        case DiffusersComponent::UNet:
            return prefixed(kUNetPrefix, unetToOriginal(key, layout));
        case DiffusersComponent::VAE:
            return prefixed(kVAEPrefix, vaeToOriginal(key, layout));
        case DiffusersComponent::TextEncoder:
            // transformers' CLIPTextModel has the same names as the SD 1.x checkpoints' text tower.
            if (key.starts_with("text_model."))
                return std::string(layout.sdxl ? kSDXLTextPrefix : kTextPrefix) + std::string(key);
            return std::nullopt;
        case DiffusersComponent::TextEncoder2:
            return prefixed(kSDXLText2Prefix, openClipToOriginal(key));
    }
    return std::nullopt;
}

std::optional<DiffusersKey> originalToDiffusersKey(std::string_view originalKey, const DiffusersLayout& layout) {
    auto wrap = [](DiffusersComponent c, std::optional<std::string> k) -> std::optional<DiffusersKey> {
        if (!k) return std::nullopt;
        return DiffusersKey{c, std::move(*k)};
    };
    if (originalKey.starts_with(kUNetPrefix))
        return wrap(DiffusersComponent::UNet, unetToDiffusers(originalKey.substr(kUNetPrefix.size()), layout));
    if (originalKey.starts_with(kVAEPrefix))
        return wrap(DiffusersComponent::VAE, vaeToDiffusers(originalKey.substr(kVAEPrefix.size()), layout));
    if (originalKey.starts_with(kTextPrefix) && originalKey.substr(kTextPrefix.size()).starts_with("text_model."))
        return DiffusersKey{DiffusersComponent::TextEncoder, std::string(originalKey.substr(kTextPrefix.size()))};
    if (originalKey.starts_with(kSDXLTextPrefix) &&
        originalKey.substr(kSDXLTextPrefix.size()).starts_with("text_model."))
        return DiffusersKey{DiffusersComponent::TextEncoder, std::string(originalKey.substr(kSDXLTextPrefix.size()))};
    if (originalKey.starts_with(kSDXLText2Prefix))
        return wrap(DiffusersComponent::TextEncoder2, openClipToDiffusers(originalKey.substr(kSDXLText2Prefix.size())));
    return std::nullopt;
}

bool isOriginalVAEAttentionWeight(std::string_view key) {
    if (!key.starts_with(kVAEPrefix)) return false;
    const bool inAttention =
        key.find(".attn_1.") != std::string_view::npos || key.find(".attn.") != std::string_view::npos;
    return inAttention && (key.ends_with(".q.weight") || key.ends_with(".k.weight") || key.ends_with(".v.weight") ||
                           key.ends_with(".proj_out.weight"));
}

}  // namespace easel::inference
