#include "inference/adapters/adapter.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <string_view>
#include <utility>

namespace easel::inference {
namespace {

// Tensor-name suffixes and the role they play in a module ("" = a layout Easel refuses, with why).
struct Role {
    std::string_view suffix;
    std::string_view role;
    std::string_view refusal;
};

constexpr std::array<Role, 41> kRoles{{
    {"lora_down.weight", "down", ""},
    {"lora_up.weight", "up", ""},
    {"lora_mid.weight", "mid", ""},
    {"lora_A.weight", "down", ""},
    {"lora_B.weight", "up", ""},
    {"lora.down.weight", "down", ""},
    {"lora.up.weight", "up", ""},
    {"lora_linear_layer.down.weight", "down", ""},
    {"lora_linear_layer.up.weight", "up", ""},
    {"alpha", "alpha", ""},
    {"hada_w1_a", "hada_w1_a", ""},
    {"hada_w1_b", "hada_w1_b", ""},
    {"hada_w2_a", "hada_w2_a", ""},
    {"hada_w2_b", "hada_w2_b", ""},
    {"hada_t1", "hada_t1", ""},
    {"hada_t2", "hada_t2", ""},
    {"lokr_w1", "lokr_w1", ""},
    {"lokr_w1_a", "lokr_w1_a", ""},
    {"lokr_w1_b", "lokr_w1_b", ""},
    {"lokr_w2", "lokr_w2", ""},
    {"lokr_w2_a", "lokr_w2_a", ""},
    {"lokr_w2_b", "lokr_w2_b", ""},
    {"lokr_t2", "lokr_t2", ""},
    {"diff", "diff", ""},
    {"dora_scale", "", "DoRA (weight decomposition)"},
    {"lora_magnitude_vector", "", "DoRA (weight decomposition)"},
    {"lora_magnitude_vector.weight", "", "DoRA (weight decomposition)"},
    {"diff_b", "", "bias changes"},
    {"lora_B.bias", "", "bias changes"},
    {"lora_up.bias", "", "bias changes"},
    {"lokr_t1", "", "LoKr with a Tucker core on w1"},
    {"oft_blocks", "", "OFT"},
    {"oft_diag", "", "OFT"},
    {"oft_R", "", "BOFT"},
    {"on_input", "", "IA3"},
    {"w_norm", "", "normalisation-layer changes"},
    {"b_norm", "", "normalisation-layer changes"},
    {"a1.weight", "", "GLoRA"},
    {"a2.weight", "", "GLoRA"},
    {"b1.weight", "", "GLoRA"},
    {"b2.weight", "", "GLoRA"},
}};

// The longest role suffix that ends `key` after a '.'.
const Role* roleOf(std::string_view key) {
    const Role* best = nullptr;
    for (const auto& r : kRoles) {
        if (key.size() > r.suffix.size() + 1 && key.ends_with(r.suffix) &&
            key[key.size() - r.suffix.size() - 1] == '.' && (best == nullptr || r.suffix.size() > best->suffix.size()))
            best = &r;
    }
    return best;
}

void replaceAll(std::string& s, std::string_view from, std::string_view to) {
    for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
        s.replace(pos, from.size(), to);
}

// diffusers before 0.21 saved attention-processor LoRAs ("...attn1.processor.to_q_lora.down.weight",
// text encoder "...self_attn.to_q_lora.down.weight"); rename them to the module they change.
std::string modernName(std::string key) {
    if (key.find("_lora.") == std::string::npos) return key;
    replaceAll(key, ".processor.to_q_lora.", ".to_q.lora.");
    replaceAll(key, ".processor.to_k_lora.", ".to_k.lora.");
    replaceAll(key, ".processor.to_v_lora.", ".to_v.lora.");
    replaceAll(key, ".processor.to_out_lora.", ".to_out.0.lora.");
    replaceAll(key, ".self_attn.to_q_lora.", ".self_attn.q_proj.lora.");
    replaceAll(key, ".self_attn.to_k_lora.", ".self_attn.k_proj.lora.");
    replaceAll(key, ".self_attn.to_v_lora.", ".self_attn.v_proj.lora.");
    replaceAll(key, ".self_attn.to_out_lora.", ".self_attn.out_proj.lora.");
    return key;
}

std::string listNames(const std::vector<std::string>& names) {
    std::string list;
    for (std::size_t i = 0; i < std::min<std::size_t>(names.size(), 8); ++i) list += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > 8) list += ", … (" + std::to_string(names.size()) + " in all)";
    return list;
}

float halfToFloat(std::uint16_t h) {
    const std::uint32_t sign = (h & 0x8000u) << 16;
    std::uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits = 0;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while ((mant & 0x400) == 0);
            bits = sign | static_cast<std::uint32_t>(127 - 15 - e) << 23 | (mant & 0x3FF) << 13;
        }
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// A one-element tensor's value (kohya stores alpha as a float scalar of the file's dtype).
std::optional<double> scalarOf(const TensorView& view) {
    if (view.numel() != 1) return std::nullopt;
    const auto* p = view.data.data();
    switch (view.dtype) {
        case DType::F32: {
            float f;
            std::memcpy(&f, p, 4);
            return f;
        }
        case DType::F64: {
            double d;
            std::memcpy(&d, p, 8);
            return d;
        }
        case DType::F16: {
            std::uint16_t h;
            std::memcpy(&h, p, 2);
            return halfToFloat(h);
        }
        case DType::BF16: {
            std::uint16_t h;
            std::memcpy(&h, p, 2);
            const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
            float f;
            std::memcpy(&f, &bits, 4);
            return f;
        }
        case DType::I64: {
            std::int64_t i;
            std::memcpy(&i, p, 8);
            return static_cast<double>(i);
        }
        case DType::I32: {
            std::int32_t i;
            std::memcpy(&i, p, 4);
            return i;
        }
        default:
            return std::nullopt;
    }
}

// The LoraConfig of one component from diffusers' "lora_adapter_metadata" (keys "unet.r", ...).
struct PeftConfig {
    double r = 8;  // LoraConfig's defaults, for a component whose metadata leaves them out
    double alpha = 8;
    bool rsLoRA = false;
    std::vector<std::pair<std::string, double>> rankPattern, alphaPattern;
};

// PEFT's get_pattern_key: a pattern names the module exactly or is a regex matching its tail.
std::optional<double> patternValue(const std::vector<std::pair<std::string, double>>& patterns,
                                   const std::string& module) {
    for (const auto& [pattern, value] : patterns) {
        if (pattern == module) return value;
    }
    for (const auto& [pattern, value] : patterns) {
        try {
            if (std::regex_match(module, std::regex("(.*\\.)?(" + pattern + ")"))) return value;
        } catch (const std::regex_error&) {
            if (module.ends_with("." + pattern)) return value;
        }
    }
    return std::nullopt;
}

std::optional<PeftConfig> peftConfigFor(const nlohmann::json& all, const std::string& prefix,
                                        const std::string& fileName) {
    PeftConfig c;
    bool any = false;
    for (const auto& [key, value] : all.items()) {
        if (!key.starts_with(prefix)) continue;
        any = true;
        const auto field = key.substr(prefix.size());
        if (field == "r" && value.is_number()) c.r = value.get<double>();
        if (field == "lora_alpha" && value.is_number()) c.alpha = value.get<double>();
        if (field == "use_rslora" && value.is_boolean()) c.rsLoRA = value.get<bool>();
        if (field == "use_dora" && value.is_boolean() && value.get<bool>())
            throw AdapterError("'" + fileName + "' is a DoRA adapter (use_dora), which Easel does not support");
        for (const auto& [name, target] :
             {std::pair{"rank_pattern", &c.rankPattern}, {"alpha_pattern", &c.alphaPattern}}) {
            if (field != name || !value.is_object()) continue;
            for (const auto& [pattern, v] : value.items()) {
                if (v.is_number()) target->emplace_back(pattern, v.get<double>());
            }
        }
    }
    if (!any) return std::nullopt;
    return c;
}

AdapterBase baseFromMetadata(const std::map<std::string, std::string>& metadata) {
    if (const auto it = metadata.find("ss_base_model_version"); it != metadata.end()) {
        const auto& v = it->second;
        if (v.starts_with("sdxl")) return AdapterBase::SDXL;
        if (v.starts_with("sd_v1")) return AdapterBase::SD1;
        if (v.starts_with("sd_v2")) return AdapterBase::SD2;
        if (!v.empty()) return AdapterBase::Other;
    }
    if (const auto it = metadata.find("modelspec.architecture"); it != metadata.end()) {
        const auto& v = it->second;
        if (v.starts_with("stable-diffusion-xl")) return AdapterBase::SDXL;
        if (v.starts_with("stable-diffusion-v1")) return AdapterBase::SD1;
        if (v.starts_with("stable-diffusion-v2")) return AdapterBase::SD2;
        if (!v.empty()) return AdapterBase::Other;
    }
    if (const auto it = metadata.find("ss_v2"); it != metadata.end())
        return it->second == "True" ? AdapterBase::SD2 : AdapterBase::SD1;
    return AdapterBase::Unknown;
}

// Component, naming and path of a module name; base gets SDXL when the name can only be SDXL's.
void classify(AdapterModule& m, AdapterBase& base) {
    struct Prefix {
        std::string_view text;
        AdapterNaming naming;
        AdapterComponent component;
        AdapterBase only;  // the one architecture with this prefix, Unknown when several have it
    };
    static constexpr std::array<Prefix, 10> kPrefixes{{
        {"lora_unet_", AdapterNaming::Kohya, AdapterComponent::UNet, AdapterBase::Unknown},
        {"lora_te_", AdapterNaming::Kohya, AdapterComponent::TextEncoder, AdapterBase::Unknown},
        {"lora_te1_", AdapterNaming::Kohya, AdapterComponent::TextEncoder, AdapterBase::SDXL},
        {"lora_te2_", AdapterNaming::Kohya, AdapterComponent::TextEncoder2, AdapterBase::SDXL},
        {"unet.", AdapterNaming::Diffusers, AdapterComponent::UNet, AdapterBase::Unknown},
        {"text_encoder.", AdapterNaming::Diffusers, AdapterComponent::TextEncoder, AdapterBase::Unknown},
        {"text_encoder_2.", AdapterNaming::Diffusers, AdapterComponent::TextEncoder2, AdapterBase::SDXL},
        {"base_model.model.", AdapterNaming::Diffusers, AdapterComponent::Unknown, AdapterBase::Unknown},
        {"lycoris_", AdapterNaming::Kohya, AdapterComponent::UNet, AdapterBase::Unknown},
        {"lora_transformer_", AdapterNaming::Kohya, AdapterComponent::Unknown, AdapterBase::Other},  // SD3, Flux
    }};
    for (const auto& p : kPrefixes) {
        if (!m.name.starts_with(p.text)) continue;
        m.naming = p.naming;
        m.component = p.component;
        m.path = m.name.substr(p.text.size());
        if (p.only != AdapterBase::Unknown) {
            // Names only another architecture has never match an SD 1.x / 2.x weight (SDXL's first text
            // encoder is SD 1.x's CLIP ViT-L, same names and shapes, but it was trained with SDXL).
            base = p.only;
            m.sdxlOnly = p.only == AdapterBase::SDXL;
            if (p.only == AdapterBase::Other) m.path = m.name;  // matches no weight of any model Easel runs
        }
        // SDXL's UNet has a pooled-text embedding SD 1.x / 2.x lack.
        if (m.component == AdapterComponent::UNet &&
            (m.path.starts_with("label_emb") || m.path.starts_with("add_embedding"))) {
            base = AdapterBase::SDXL;
            m.sdxlOnly = true;
        }
        return;
    }
    // diffusers attn_procs files carry UNet module paths with no prefix.
    m.naming = AdapterNaming::Diffusers;
    m.path = m.name;
    const bool unetPath =
        m.name.starts_with("down_blocks.") || m.name.starts_with("mid_block.") || m.name.starts_with("up_blocks.");
    m.component = unetPath ? AdapterComponent::UNet : AdapterComponent::Unknown;
}

std::int64_t dim(const TensorView& v, std::size_t i) { return i < v.shape.size() ? v.shape[i] : -1; }

}  // namespace

std::string_view componentName(AdapterComponent component) {
    switch (component) {
        case AdapterComponent::UNet:
            return "UNet";
        case AdapterComponent::TextEncoder:
            return "text encoder";
        case AdapterComponent::TextEncoder2:
            return "text encoder 2";
        case AdapterComponent::Unknown:
            break;
    }
    return "model";
}

struct Adapter::Impl {
    SafetensorsFile file;
    std::vector<AdapterModule> modules;
    std::string formatName;
    AdapterBase base = AdapterBase::Unknown;

    explicit Impl(SafetensorsFile f) : file(std::move(f)) {}

    std::string fileName() const { return file.path().filename().string(); }
    const TensorView& tensor(const AdapterModule& m, const std::string& role) const {
        return file.at(m.tensors.at(role));
    }
    [[noreturn]] void fail(const AdapterModule& m, const std::string& what) const {
        throw AdapterError("'" + fileName() + "': module '" + m.name + "' " + what);
    }

    // Algorithm, rank and the tensors each needs; shapes are checked against the model later.
    void settle(AdapterModule& m) const {
        auto has = [&](const char* role) { return m.tensors.contains(role); };
        auto need = [&](std::initializer_list<const char*> roles) {
            for (const auto* r : roles) {
                if (!has(r)) fail(m, std::string("has no '") + r + "' tensor");
            }
        };
        if (has("down") || has("up")) {
            m.algorithm = AdapterAlgorithm::LoRA;
            need({"down", "up"});
            const auto& down = tensor(m, "down");
            const auto& up = tensor(m, "up");
            m.rank = dim(down, 0);
            if (up.shape.size() < 2 || dim(up, 1) != m.rank || down.shape.size() < 2)
                fail(m, "has lora_down " + shapeText(down.shape) + " and lora_up " + shapeText(up.shape) +
                            ", whose ranks disagree");
            if (has("mid")) {
                const auto& mid = tensor(m, "mid");
                if (dim(mid, 0) != m.rank || dim(mid, 1) != m.rank) fail(m, "has a lora_mid of the wrong rank");
            }
        } else if (has("hada_w1_a")) {
            m.algorithm = AdapterAlgorithm::LoHa;
            need({"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"});
            if (has("hada_t1") != has("hada_t2")) fail(m, "has only one of hada_t1 / hada_t2");
            m.rank = dim(tensor(m, "hada_w1_b"), 0);
            const bool tucker = has("hada_t1");
            for (const char* a : {"hada_w1_a", "hada_w2_a"}) {
                if (dim(tensor(m, a), tucker ? 0 : 1) != m.rank)
                    fail(m, std::string("has a ") + a + " of the wrong rank");
            }
            if (dim(tensor(m, "hada_w2_b"), 0) != m.rank) fail(m, "has a hada_w2_b of the wrong rank");
        } else if (has("lokr_w1") || has("lokr_w1_a")) {
            m.algorithm = AdapterAlgorithm::LoKr;
            if (!has("lokr_w1")) need({"lokr_w1_a", "lokr_w1_b"});
            if (!has("lokr_w2")) need({"lokr_w2_a", "lokr_w2_b"});
            // LyCORIS and A1111: the rank of the low-rank half; both halves full means scale 1.
            m.rank = has("lokr_w1_b") ? dim(tensor(m, "lokr_w1_b"), 0)
                                      : (has("lokr_w2_b") ? dim(tensor(m, "lokr_w2_b"), 0) : 0);
        } else if (has("diff")) {
            m.algorithm = AdapterAlgorithm::Full;
            m.rank = 0;
        } else {
            fail(m, "has no weights (only an alpha)");
        }
        if (m.rank < 0 || (m.rank == 0 && m.algorithm == AdapterAlgorithm::LoRA)) fail(m, "has rank 0");
    }

    static std::string shapeText(const std::vector<std::int64_t>& s) {
        std::string t = "[";
        for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
        return t + "]";
    }

    // alpha and scale: an alpha tensor wins (kohya, LyCORIS); diffusers files take the component's
    // LoraConfig from the metadata; otherwise scale 1.
    void scaleOf(AdapterModule& m, const std::map<AdapterComponent, PeftConfig>& peft) const {
        const auto rank = static_cast<double>(m.rank);
        if (m.tensors.contains("alpha")) {
            const auto& view = tensor(m, "alpha");
            const auto value = scalarOf(view);
            if (!value || !std::isfinite(*value)) fail(m, "has an alpha that is not a finite number");
            m.alpha = *value == 0 ? rank : *value;  // kohya and LyCORIS: alpha 0 or absent means alpha = rank
            m.scale = m.rank > 0 ? m.alpha / rank : 1.0;
            return;
        }
        const auto it = peft.find(m.component);
        if (m.naming == AdapterNaming::Diffusers && it != peft.end() && m.algorithm == AdapterAlgorithm::LoRA) {
            const auto& c = it->second;
            const double r = patternValue(c.rankPattern, m.path).value_or(c.r);
            if (r != rank)
                fail(m, "has rank " + std::to_string(m.rank) + " but the file's lora_adapter_metadata says " +
                            std::to_string(static_cast<std::int64_t>(r)));
            m.alpha = patternValue(c.alphaPattern, m.path).value_or(c.alpha);
            m.scale = c.rsLoRA ? m.alpha / std::sqrt(r) : m.alpha / r;
            return;
        }
        m.alpha = rank;
        m.scale = 1.0;
    }
};

Adapter::Adapter(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Adapter::Adapter(Adapter&&) noexcept = default;
Adapter& Adapter::operator=(Adapter&&) noexcept = default;
Adapter::~Adapter() = default;

const std::filesystem::path& Adapter::path() const { return m_impl->file.path(); }
std::string Adapter::name() const { return m_impl->file.path().stem().string(); }
std::string Adapter::formatName() const { return m_impl->formatName; }
AdapterBase Adapter::base() const { return m_impl->base; }
const std::vector<AdapterModule>& Adapter::modules() const { return m_impl->modules; }
const SafetensorsFile& Adapter::file() const { return m_impl->file; }
const std::map<std::string, std::string>& Adapter::metadata() const { return m_impl->file.metadata(); }

Adapter Adapter::open(const std::filesystem::path& path) {
    const auto fileName = path.filename().string();
    const auto ext = path.extension().string();
    if (ext == ".ckpt" || ext == ".pt" || ext == ".pth" || ext == ".bin") {
        throw AdapterError("'" + fileName +
                           "' is a pickled file, which can run arbitrary code when loaded; Easel only loads "
                           "adapters as .safetensors (convert it with a trusted tool first)");
    }
    std::optional<SafetensorsFile> file;
    try {
        file = SafetensorsFile::open(path);
    } catch (const SafetensorsError& e) {
        throw AdapterError("'" + fileName + "' is not a readable .safetensors file: " + e.what());
    }
    auto impl = std::make_unique<Impl>(std::move(*file));
    const auto& tensors = impl->file.tensors();
    if (tensors.empty()) throw AdapterError("'" + fileName + "' holds no tensors");
    for (const auto& t : tensors) {
        if (t.name.starts_with("model.diffusion_model.") || t.name.starts_with("first_stage_model."))
            throw AdapterError("'" + fileName + "' is a full model checkpoint, not an adapter");
        if (t.name == "emb_params" || t.name.starts_with("string_to_param") || t.name == "clip_l" || t.name == "clip_g")
            throw AdapterError("'" + fileName + "' is a textual-inversion embedding, not a LoRA");
    }

    // Group the tensors by module.
    std::map<std::string, AdapterModule> byName;
    std::vector<std::string> unknown;
    std::set<std::string> refusals;
    for (const auto& t : tensors) {
        const auto name = modernName(t.name);
        const Role* role = roleOf(name);
        if (role == nullptr) {
            unknown.push_back(t.name);
            continue;
        }
        if (role->role.empty()) {
            refusals.insert(std::string(role->refusal) + " ('" + t.name + "')");
            continue;
        }
        auto& m = byName[name.substr(0, name.size() - role->suffix.size() - 1)];
        m.tensors[std::string(role->role)] = t.name;
    }
    if (!refusals.empty()) {
        throw AdapterError("'" + fileName + "' uses " + *refusals.begin() +
                           ", which Easel does not support (it merges LoRA, LoCon, LoHa and LoKr)");
    }
    if (!unknown.empty()) {
        throw AdapterError("'" + fileName + "' is not a LoRA / LyCORIS adapter Easel can read: tensor name(s) " +
                           listNames(unknown) + " have no known meaning");
    }

    // Per-component LoRA configs of a diffusers file.
    std::map<AdapterComponent, PeftConfig> peft;
    if (const auto it = impl->file.metadata().find("lora_adapter_metadata"); it != impl->file.metadata().end()) {
        nlohmann::json all;
        try {
            all = nlohmann::json::parse(it->second);
        } catch (const nlohmann::json::exception&) {
            throw AdapterError("'" + fileName + "' has a lora_adapter_metadata that is not valid JSON");
        }
        if (!all.is_object())
            throw AdapterError("'" + fileName + "' has a lora_adapter_metadata that is not an object");
        if (auto c = peftConfigFor(all, "unet.", fileName)) peft[AdapterComponent::UNet] = *c;
        if (auto c = peftConfigFor(all, "text_encoder.", fileName)) peft[AdapterComponent::TextEncoder] = *c;
        if (auto c = peftConfigFor(all, "text_encoder_2.", fileName)) peft[AdapterComponent::TextEncoder2] = *c;
    }

    impl->base = baseFromMetadata(impl->file.metadata());
    std::set<std::string> kinds;
    bool conv = false;
    for (auto& [name, m] : byName) {
        m.name = name;
        classify(m, impl->base);
        impl->settle(m);
        impl->scaleOf(m, peft);
        if (m.algorithm == AdapterAlgorithm::LoRA) {
            const auto& down = impl->tensor(m, "down");
            conv = conv || m.tensors.contains("mid") || (down.shape.size() == 4 && down.shape[2] * down.shape[3] > 1);
            if (m.naming == AdapterNaming::Kohya) {
                kinds.insert("kohya LoRA");
            } else {
                const bool peftNames = impl->tensor(m, "down").name.ends_with("lora_A.weight");
                kinds.insert(peftNames ? "diffusers PEFT LoRA" : "diffusers LoRA (pre-PEFT names)");
            }
        } else {
            kinds.insert(m.algorithm == AdapterAlgorithm::LoHa   ? "LyCORIS LoHa"
                         : m.algorithm == AdapterAlgorithm::LoKr ? "LyCORIS LoKr"
                                                                 : "LyCORIS full");
        }
        impl->modules.push_back(std::move(m));
    }
    for (const auto& k : kinds) {
        auto text = k == "kohya LoRA" && conv ? std::string("kohya LoRA/LoCon") : k;
        impl->formatName += (impl->formatName.empty() ? "" : " + ") + text;
    }
    return Adapter(std::move(impl));
}

}  // namespace easel::inference
