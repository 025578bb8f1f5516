#include "inference/loading/diffusers_loader.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace easel::inference {
namespace {

using nlohmann::json;

json readJson(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw ModelLoadError("the diffusers folder lacks '" + path.string() + "'");
    try {
        return json::parse(in);
    } catch (const json::exception& e) {
        throw ModelLoadError("'" + path.string() + "' is not valid JSON: " + e.what());
    }
}

// The component's .safetensors weights; pickled .bin weights are refused, as for single files.
std::filesystem::path weightsFile(const std::filesystem::path& dir, std::string_view stem) {
    for (const std::string suffix : {".safetensors", ".fp16.safetensors"}) {
        const auto candidate = dir / (std::string(stem) + suffix);
        if (std::filesystem::exists(candidate)) return candidate;
    }
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (entry.path().extension() == ".bin") {
            throw ModelLoadError("'" + entry.path().string() +
                                 "' holds pickled weights (.bin), which can run arbitrary code when loaded; Easel "
                                 "only loads .safetensors: save the folder again with safe_serialization=True or "
                                 "convert it with a trusted tool");
        }
    }
    throw ModelLoadError("the diffusers folder lacks '" + (dir / (std::string(stem) + ".safetensors")).string() + "'");
}

// int or per-block list; diffusers repeats an int for every block.
std::vector<int> perBlock(const json& value, std::size_t blocks) {
    if (value.is_array()) return value.get<std::vector<int>>();
    return std::vector<int>(blocks, value.get<int>());
}

void readUNetConfig(const json& c, DiffusersLayout& layout, ModelOverrides& o, const std::filesystem::path& where) {
    const auto channels = c.at("block_out_channels").get<std::vector<int>>();
    const auto layers = perBlock(c.value("layers_per_block", json(2)), channels.size());
    if (layers.empty() || std::any_of(layers.begin(), layers.end(), [&](int l) { return l != layers[0]; }))
        throw ModelLoadError("'" + where.string() + "': layers_per_block must be the same for every block");
    layout.unetLayersPerBlock = layers[0];
    for (const auto& type : c.at("up_block_types")) {
        layout.unetUpBlockAttention.push_back(type.get<std::string>().find("CrossAttn") != std::string::npos);
    }
    // diffusers' attention_head_dim is historically the number of heads; num_attention_heads, when
    // set, takes its place (UNet2DConditionModel.__init__).
    const json heads = c.contains("num_attention_heads") && !c["num_attention_heads"].is_null()
                           ? c["num_attention_heads"]
                           : c.value("attention_head_dim", json());
    if (heads.is_null()) return;
    const auto perLevel = perBlock(heads, channels.size());
    if (perLevel.size() != channels.size() ||
        std::any_of(perLevel.begin(), perLevel.end(), [](int h) { return h <= 0; }))
        throw ModelLoadError("'" + where.string() + "': attention_head_dim does not fit block_out_channels");
    bool sameHeads = true, sameWidth = true;
    for (std::size_t i = 1; i < channels.size(); ++i) {
        sameHeads = sameHeads && perLevel[i] == perLevel[0];
        sameWidth = sameWidth && channels[i] * perLevel[0] == channels[0] * perLevel[i];
    }
    if (sameHeads) {
        o.unetNumHeads = perLevel[0];  // SD 1.x: 8 heads at every level
    } else if (sameWidth && channels[0] % perLevel[0] == 0) {
        o.unetNumHeadChannels = channels[0] / perLevel[0];  // SD 2.x: [5, 10, 20, 20] heads of 64
    } else {
        throw ModelLoadError("'" + where.string() +
                             "': per-level head counts that give neither a fixed head count nor a fixed head width");
    }
}

struct Component {
    DiffusersComponent kind;
    std::filesystem::path file;
};

// SDXL's text_encoder_2 is a transformers CLIPTextModelWithProjection; Easel runs it in the open_clip
// layout of the single files. q/k/v become one in_proj tensor per layer (rows q, k, v, as
// nn.MultiheadAttention stacks them) and text_projection.weight [E, W] becomes its transpose
// text_projection [W, E]; both are copied into memory, the rest stays mapped.
class OpenCLIPFuser {
public:
    // True when the tensor was taken (a projection piece); false when it maps one to one.
    bool take(const TensorView& t) {
        const std::string_view name = t.name;
        if (name == "text_projection.weight") {
            m_projection = t;
            return true;
        }
        if (name == "text_model.embeddings.position_ids") return true;  // a buffer open_clip does not keep
        constexpr std::string_view layers = "text_model.encoder.layers.";
        if (!name.starts_with(layers)) return false;
        const auto dot = name.find('.', layers.size());
        if (dot == std::string_view::npos) return false;
        const auto rest = name.substr(dot + 1);
        for (int part = 0; part < 3; ++part) {
            const std::string stem = std::string("self_attn.") + "qkv"[part] + "_proj.";
            if (!rest.starts_with(stem)) continue;
            const bool weight = rest.substr(stem.size()) == "weight";
            if (!weight && rest.substr(stem.size()) != "bias") return false;
            const auto layer = std::string(name.substr(layers.size(), dot - layers.size()));
            (weight ? m_weights : m_biases)[layer][static_cast<std::size_t>(part)] = t;
            return true;
        }
        return false;
    }

    void finish(const std::filesystem::path& file, std::vector<OwnedTensor>& owned) const {
        const std::string prefix(kSDXLText2Prefix);
        for (const auto* parts : {&m_weights, &m_biases}) {
            const bool weight = parts == &m_weights;
            for (const auto& [layer, qkv] : *parts) {
                OwnedTensor t{
                    prefix + "transformer.resblocks." + layer + ".attn.in_proj_" + (weight ? "weight" : "bias"),
                    qkv[0].dtype,
                    qkv[0].shape,
                    {}};
                for (const auto& piece : qkv) {
                    if (piece.name.empty() || piece.dtype != qkv[0].dtype || piece.shape != qkv[0].shape) {
                        throw ModelLoadError("'" + file.string() + "': layer " + layer +
                                             " lacks one of q_proj, k_proj, v_proj or they differ in shape");
                    }
                    t.bytes.insert(t.bytes.end(), piece.data.begin(), piece.data.end());
                }
                if (t.shape.empty()) throw ModelLoadError("'" + file.string() + "': a 0-d attention projection");
                t.shape[0] *= 3;
                owned.push_back(std::move(t));
            }
        }
        if (m_projection.name.empty()) {
            throw ModelLoadError("'" + file.string() +
                                 "' has no text_projection.weight: SDXL's text_encoder_2 is a "
                                 "CLIPTextModelWithProjection");
        }
        const auto& p = m_projection;
        if (p.shape.size() != 2) throw ModelLoadError("'" + file.string() + "': text_projection.weight is not 2-D");
        const auto rows = p.shape[0], cols = p.shape[1];
        const auto size = dtypeSize(p.dtype);
        OwnedTensor projection{
            prefix + "text_projection", p.dtype, {cols, rows}, std::vector<std::byte>(p.data.size())};
        for (std::int64_t r = 0; r < rows; ++r) {
            for (std::int64_t c = 0; c < cols; ++c) {
                std::memcpy(projection.bytes.data() + static_cast<std::size_t>(c * rows + r) * size,
                            p.data.data() + static_cast<std::size_t>(r * cols + c) * size, size);
            }
        }
        owned.push_back(std::move(projection));
        // open_clip's unused logit_scale, which the module carries: its initial value ln(1/0.07).
        const float logitScale = std::log(1.0f / 0.07f);
        OwnedTensor scale{prefix + "logit_scale", DType::F32, {}, std::vector<std::byte>(sizeof(float))};
        std::memcpy(scale.bytes.data(), &logitScale, sizeof(float));
        owned.push_back(std::move(scale));
    }

private:
    std::map<std::string, std::array<TensorView, 3>> m_weights, m_biases;
    TensorView m_projection;
};

}  // namespace

bool isDiffusersFolder(const std::filesystem::path& path) {
    return std::filesystem::is_directory(path) && std::filesystem::exists(path / "model_index.json");
}

DiffusersFolder openDiffusersFolder(const std::filesystem::path& root) {
    (void)readJson(root / "model_index.json");  // must be there and be JSON
    const auto unetFile = weightsFile(root / "unet", "diffusion_pytorch_model");
    const auto vaeFile = weightsFile(root / "vae", "diffusion_pytorch_model");
    const auto textFile = weightsFile(root / "text_encoder", "model");
    const bool sdxl = std::filesystem::is_directory(root / "text_encoder_2");
    const auto text2File = sdxl ? weightsFile(root / "text_encoder_2", "model") : std::filesystem::path();

    DiffusersLayout layout;
    layout.sdxl = sdxl;
    ModelOverrides o;
    bool sd2Text = false;
    const auto unetConfig = root / "unet" / "config.json";
    const auto vaeConfig = root / "vae" / "config.json";
    const auto textConfig = root / "text_encoder" / "config.json";
    const auto schedulerConfig = root / "scheduler" / "scheduler_config.json";
    std::filesystem::path current;
    try {
        current = unetConfig;
        readUNetConfig(readJson(unetConfig), layout, o, unetConfig);
        current = vaeConfig;
        const auto vae = readJson(vaeConfig);
        layout.vaeLevels = static_cast<int>(vae.at("block_out_channels").size());
        if (vae.contains("scaling_factor") && vae["scaling_factor"].is_number())
            o.vaeScalingFactor = vae["scaling_factor"].get<float>();
        current = textConfig;
        const auto text = readJson(textConfig);
        if (text.contains("num_attention_heads")) o.textNumHeads = text["num_attention_heads"].get<int>();
        const auto act = text.value("hidden_act", std::string("quick_gelu"));
        o.textQuickGELU = act == "quick_gelu";
        sd2Text = !*o.textQuickGELU;
        if (sdxl) {
            current = root / "text_encoder_2" / "config.json";
            const auto text2 = readJson(current);
            if (text2.contains("num_attention_heads")) o.text2NumHeads = text2["num_attention_heads"].get<int>();
            o.text2QuickGELU = text2.value("hidden_act", std::string("gelu")) == "quick_gelu";
        }
        current = schedulerConfig;
        if (std::filesystem::exists(schedulerConfig)) {
            const auto prediction = readJson(schedulerConfig).value("prediction_type", std::string("epsilon"));
            if (prediction == "v_prediction") {
                o.prediction = PredictionType::VPrediction;
            } else if (prediction == "epsilon") {
                o.prediction = PredictionType::Epsilon;
            } else {
                throw ModelLoadError("'" + schedulerConfig.string() + "': prediction_type '" + prediction +
                                     "' is not supported (epsilon or v_prediction)");
            }
        }
    } catch (const json::exception& e) {
        throw ModelLoadError("'" + current.string() + "' has a missing or mistyped field: " + e.what());
    }

    std::vector<SafetensorsFile> sources;
    std::vector<TensorView> views;
    std::vector<OwnedTensor> owned;
    bool hasPositionIds = false;
    std::vector<Component> components{{DiffusersComponent::UNet, unetFile},
                                      {DiffusersComponent::VAE, vaeFile},
                                      {DiffusersComponent::TextEncoder, textFile}};
    if (sdxl) components.push_back({DiffusersComponent::TextEncoder2, text2File});
    OpenCLIPFuser fuser;
    for (const auto& component : components) {
        auto file = SafetensorsFile::open(component.file);
        for (const auto& t : file.tensors()) {
            if (component.kind == DiffusersComponent::TextEncoder2 && fuser.take(t)) continue;
            auto original = diffusersToOriginalKey(component.kind, t.name, layout);
            if (!original) {
                // A text encoder with a projection head (CLIPTextModelWithProjection) is still usable.
                if (component.kind == DiffusersComponent::TextEncoder) continue;
                throw ModelLoadError("tensor '" + t.name + "' in '" + component.file.string() +
                                     "' has no counterpart in an SD 1.x / 2.x / XL model; Easel loads SD 1.x, 2.x "
                                     "and XL diffusers folders");
            }
            TensorView view = t;
            view.name = std::move(*original);
            if (isOriginalVAEAttentionWeight(view.name) && view.shape.size() == 2) {
                view.shape.insert(view.shape.end(), {1, 1});  // Linear [C, C] -> Conv2d 1x1
            }
            hasPositionIds = hasPositionIds || (component.kind == DiffusersComponent::TextEncoder &&
                                                t.name == "text_model.embeddings.position_ids");
            if (component.kind == DiffusersComponent::TextEncoder &&
                t.name == "text_model.embeddings.position_embedding.weight" && !t.shape.empty()) {
                // transformers >= 4.31 no longer saves the position_ids buffer; it is arange(n).
                OwnedTensor ids{std::string(sdxl ? kSDXLTextPrefix : "cond_stage_model.transformer.") +
                                    "text_model.embeddings.position_ids",
                                DType::I64,
                                {1, t.shape[0]},
                                std::vector<std::byte>(static_cast<std::size_t>(t.shape[0]) * 8)};
                for (std::int64_t i = 0; i < t.shape[0]; ++i) std::memcpy(ids.bytes.data() + i * 8, &i, 8);
                owned.push_back(std::move(ids));
            }
            views.push_back(std::move(view));
        }
        sources.push_back(std::move(file));
    }
    if (hasPositionIds) owned.clear();
    if (sdxl) fuser.finish(text2File, owned);

    std::optional<std::filesystem::path> vocab, merges;
    if (std::filesystem::exists(root / "tokenizer" / "vocab.json")) {
        vocab = root / "tokenizer" / "vocab.json";
        merges = root / "tokenizer" / "merges.txt";
    }
    return DiffusersFolder{root,
                           unetFile,
                           vaeFile,
                           textFile,
                           text2File,
                           layout,
                           o,
                           sd2Text && !sdxl,
                           vocab,
                           merges,
                           SafetensorsFile::compose(root, std::move(sources), std::move(views), std::move(owned))};
}

std::string DiffusersFolder::describeKey(const std::string& originalKey) const {
    const auto key = originalToDiffusersKey(originalKey, layout);
    if (!key) return "'" + originalKey + "'";
    const auto& file = key->component == DiffusersComponent::UNet           ? unetFile
                       : key->component == DiffusersComponent::VAE          ? vaeFile
                       : key->component == DiffusersComponent::TextEncoder2 ? textEncoder2File
                                                                            : textEncoderFile;
    return "'" + key->key + "' (" + (file.parent_path().filename() / file.filename()).string() + ")";
}

std::string DiffusersFolder::translateMessage(const std::string& message) const {
    std::string out;
    std::size_t pos = 0;
    while (pos < message.size()) {
        const auto open = message.find('\'', pos);
        const auto close = open == std::string::npos ? std::string::npos : message.find('\'', open + 1);
        if (close == std::string::npos) break;
        const auto quoted = message.substr(open + 1, close - open - 1);
        out += message.substr(pos, open - pos);
        out += originalToDiffusersKey(quoted, layout) ? describeKey(quoted) : message.substr(open, close - open + 1);
        pos = close + 1;
    }
    return out + message.substr(std::min(pos, message.size()));
}

}  // namespace easel::inference
