#include "inference/adapters/adapter_key_map.h"

#include <algorithm>
#include <functional>
#include <numeric>

#include "inference/loading/diffusers_key_map.h"

namespace easel::inference {
namespace {

constexpr std::string_view kWeightSuffix = ".weight";

std::string underscored(std::string s) {
    std::replace(s.begin(), s.end(), '.', '_');
    return s;
}

std::string mapKey(AdapterComponent component, AdapterNaming naming, const std::string& path) {
    const char c = component == AdapterComponent::UNet ? 'u' : component == AdapterComponent::TextEncoder2 ? '2' : 't';
    const char n = naming == AdapterNaming::Kohya ? 'k' : 'd';
    return std::string{c, n, ':'} + path;
}

std::int64_t product(const std::vector<std::int64_t>& s, std::size_t from = 0) {
    std::int64_t p = 1;
    for (std::size_t i = from; i < s.size(); ++i) p *= s[i];
    return p;
}

std::string shapeText(const std::vector<std::int64_t>& s) {
    std::string t = "[";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
}

std::string listNames(const std::vector<std::string>& names) {
    std::string list;
    for (std::size_t i = 0; i < std::min<std::size_t>(names.size(), 6); ++i) list += (i ? ", " : "") + names[i];
    if (names.size() > 6) list += ", … (" + std::to_string(names.size()) + " in all)";
    return list;
}

std::string baseName(AdapterBase base) {
    switch (base) {
        case AdapterBase::SD1:
            return "SD 1.x";
        case AdapterBase::SD2:
            return "SD 2.x";
        case AdapterBase::SDXL:
            return "SDXL";
        case AdapterBase::Other:
            return "another architecture";
        case AdapterBase::Unknown:
            break;
    }
    return "";
}

// OpenCLIP resblock weights under the transformers names the LoRA trainers use.
struct OpenCLIPName {
    std::string_view openClip;  // after "transformer.resblocks.N."
    std::string_view clip;      // after "text_model.encoder.layers.N."
};
constexpr OpenCLIPName kOpenCLIPNames[] = {
    {"attn.out_proj.weight", "self_attn.out_proj"},
    {"mlp.c_fc.weight", "mlp.fc1"},
    {"mlp.c_proj.weight", "mlp.fc2"},
};

}  // namespace

DiffusersLayout diffusersLayoutOf(const DetectedModel& model) {
    DiffusersLayout layout;
    layout.unetLayersPerBlock = model.unet.numResBlocks;
    layout.sdxl = model.family == ModelFamily::SDXL;
    const auto levels = model.unet.channelMult.size();
    for (std::size_t i = 0; i < levels; ++i) {
        const int level = static_cast<int>(levels - 1 - i);
        const auto& a = model.unet.attentionLevels;
        layout.unetUpBlockAttention.push_back(std::find(a.begin(), a.end(), level) != a.end());
    }
    return layout;
}

void AdapterKeyMap::add(AdapterComponent component, const std::string& diffusersPath, AdapterTarget target) {
    target.component = component;
    if (target.shape.empty()) target.shape = target.weightShape;
    m_targets.emplace(mapKey(component, AdapterNaming::Diffusers, diffusersPath), target);
    m_targets.emplace(mapKey(component, AdapterNaming::Kohya, underscored(diffusersPath)), std::move(target));
}

AdapterKeyMap::AdapterKeyMap(const DetectedModel& model, const std::vector<ModelWeight>& weights)
    : m_family(model.family) {
    const auto layout = diffusersLayoutOf(model);
    const bool openClip = model.text.kind == TextEncoderKind::OpenCLIP;
    for (const auto& w : weights) {
        const bool matrix = w.shape.size() == 2 || w.shape.size() == 4;
        if (!matrix) continue;
        AdapterTarget target{w.key, AdapterComponent::UNet, w.shape, 0, w.shape};
        if (w.key.starts_with(model.unetPrefix) && w.key.ends_with(kWeightSuffix)) {
            const auto diffusers = originalToDiffusersKey(w.key, layout);
            if (!diffusers || diffusers->component != DiffusersComponent::UNet) continue;
            const auto path = diffusers->key.substr(0, diffusers->key.size() - kWeightSuffix.size());
            add(AdapterComponent::UNet, path, target);
            // kohya names of the LDM module path, as some SD 1.x converters write them.
            const auto ldm =
                w.key.substr(model.unetPrefix.size(), w.key.size() - model.unetPrefix.size() - kWeightSuffix.size());
            m_targets.emplace(mapKey(AdapterComponent::UNet, AdapterNaming::Kohya, underscored(ldm)), target);
            continue;
        }
        // SDXL's second encoder is OpenCLIP under text2Prefix; SD 2.x's only one is under textPrefix.
        if (!model.text2Prefix.empty() && w.key.starts_with(model.text2Prefix)) {
            addOpenCLIP(AdapterComponent::TextEncoder2, w.key.substr(model.text2Prefix.size()), target);
            continue;
        }
        if (!w.key.starts_with(model.textPrefix)) continue;
        const auto rest = w.key.substr(model.textPrefix.size());
        if (openClip) {
            addOpenCLIP(AdapterComponent::TextEncoder, rest, target);
            continue;
        }
        if (!rest.ends_with(kWeightSuffix) || rest.find("embeddings.") != std::string::npos) continue;
        add(AdapterComponent::TextEncoder, rest.substr(0, rest.size() - kWeightSuffix.size()), target);
    }
}

void AdapterKeyMap::addOpenCLIP(AdapterComponent component, const std::string& rest, const AdapterTarget& target) {
    constexpr std::string_view kBlocks = "transformer.resblocks.";
    if (!rest.starts_with(kBlocks)) return;
    const auto dot = rest.find('.', kBlocks.size());
    if (dot == std::string::npos) return;
    const auto layer = rest.substr(kBlocks.size(), dot - kBlocks.size());
    const auto tail = std::string_view(rest).substr(dot + 1);
    const std::string clipLayer = "text_model.encoder.layers." + layer + ".";
    const auto& shape = target.weightShape;
    if (tail == "attn.in_proj_weight" && shape.size() == 2 && shape[0] % 3 == 0) {
        const auto rows = shape[0] / 3;
        const char* names[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"};
        for (int part = 0; part < 3; ++part) {
            auto slice = target;
            slice.shape = {rows, shape[1]};
            slice.rowOffset = part * rows;
            add(component, clipLayer + names[part], slice);
        }
        return;
    }
    for (const auto& n : kOpenCLIPNames) {
        if (tail == n.openClip) add(component, clipLayer + std::string(n.clip), target);
    }
}

AdapterKeyMap AdapterKeyMap::fromCheckpoint(const DetectedModel& model, const SafetensorsFile& file) {
    std::vector<ModelWeight> weights;
    weights.reserve(file.tensors().size());
    for (const auto& t : file.tensors()) weights.push_back({t.name, t.shape});
    return AdapterKeyMap(model, weights);
}

std::optional<AdapterTarget> AdapterKeyMap::find(const AdapterModule& module) const {
    const bool sdxl = m_family == ModelFamily::SDXL;
    if (module.sdxlOnly && !sdxl) return std::nullopt;
    // kohya names SDXL's first text encoder "lora_te1_": a "lora_te_" module was trained on SD 1.x / 2.x.
    if (sdxl && module.naming == AdapterNaming::Kohya && module.component == AdapterComponent::TextEncoder &&
        !module.sdxlOnly)
        return std::nullopt;
    const auto lookup = [&](AdapterComponent c) -> std::optional<AdapterTarget> {
        const auto it = m_targets.find(mapKey(c, module.naming, module.path));
        if (it == m_targets.end()) return std::nullopt;
        return it->second;
    };
    if (module.component != AdapterComponent::Unknown) return lookup(module.component);
    if (auto t = lookup(AdapterComponent::UNet)) return t;
    return lookup(AdapterComponent::TextEncoder);
}

std::pair<std::int64_t, std::int64_t> adapterDeltaSize(const Adapter& adapter, const AdapterModule& m) {
    const auto shape = [&](const char* role) -> const std::vector<std::int64_t>& {
        return adapter.file().at(m.tensors.at(role)).shape;
    };
    const auto has = [&](const char* role) { return m.tensors.contains(role); };
    const auto bad = [&] {
        return AdapterError("'" + adapter.path().filename().string() + "': the tensors of module '" + m.name +
                            "' have shapes that do not compose into one weight change");
    };
    auto at = [&](const std::vector<std::int64_t>& s, std::size_t i) {
        if (i >= s.size()) throw bad();
        return s[i];
    };
    switch (m.algorithm) {
        case AdapterAlgorithm::LoRA: {
            const auto kernel = has("mid") ? product(shape("mid"), 2) : 1;
            return {at(shape("up"), 0), product(shape("down"), 1) * kernel};
        }
        case AdapterAlgorithm::LoHa: {
            const bool tucker = has("hada_t1");
            const auto rows = at(shape("hada_w1_a"), tucker ? 1 : 0);
            const auto cols = at(shape("hada_w1_b"), 1) * (tucker ? product(shape("hada_t1"), 2) : 1);
            const auto rows2 = at(shape("hada_w2_a"), tucker ? 1 : 0);
            const auto cols2 = at(shape("hada_w2_b"), 1) * (tucker ? product(shape("hada_t2"), 2) : 1);
            if (rows != rows2 || cols != cols2) throw bad();
            return {rows, cols};
        }
        case AdapterAlgorithm::LoKr: {
            const auto o1 = has("lokr_w1") ? at(shape("lokr_w1"), 0) : at(shape("lokr_w1_a"), 0);
            const auto i1 = has("lokr_w1") ? at(shape("lokr_w1"), 1) : at(shape("lokr_w1_b"), 1);
            if (has("lokr_w1") && shape("lokr_w1").size() != 2) throw bad();
            std::int64_t o2 = 0, i2 = 0;
            if (has("lokr_w2")) {
                o2 = at(shape("lokr_w2"), 0);
                i2 = product(shape("lokr_w2"), 1);
            } else if (has("lokr_t2")) {
                o2 = at(shape("lokr_w2_a"), 1);
                i2 = at(shape("lokr_w2_b"), 1) * product(shape("lokr_t2"), 2);
            } else {
                o2 = at(shape("lokr_w2_a"), 0);
                i2 = product(shape("lokr_w2_b"), 1);
            }
            return {o1 * o2, i1 * i2};
        }
        case AdapterAlgorithm::Full:
            return {at(shape("diff"), 0), product(shape("diff"), 1)};
    }
    throw bad();
}

std::vector<ResolvedModule> resolveAdapter(const Adapter& adapter, const AdapterKeyMap& map) {
    const auto file = adapter.path().filename().string();
    // What the file says it was made for, when that is not this model's family.
    const bool sameFamily = (adapter.base() == AdapterBase::SD1 && map.family() == ModelFamily::SD1) ||
                            (adapter.base() == AdapterBase::SD2 && map.family() == ModelFamily::SD2) ||
                            (adapter.base() == AdapterBase::SDXL && map.family() == ModelFamily::SDXL);
    const auto made = sameFamily ? std::string() : baseName(adapter.base());
    const auto saysMade = made.empty() ? std::string() : " (it is an adapter for " + made + ")";
    std::vector<ResolvedModule> resolved;
    std::vector<std::string> unknown, misfit;
    for (const auto& m : adapter.modules()) {
        auto target = map.find(m);
        if (!target) {
            unknown.push_back("'" + m.name + "'");
            continue;
        }
        const auto [rows, cols] = adapterDeltaSize(adapter, m);
        if (target->shape.empty() || rows != target->shape[0] || rows * cols != product(target->shape)) {
            misfit.push_back("'" + m.name + "' makes a [" + std::to_string(rows) + ", " + std::to_string(cols) +
                             "] change for '" + target->key + "' " + shapeText(target->shape));
            continue;
        }
        resolved.push_back({&m, std::move(*target)});
    }
    if (!unknown.empty()) {
        const bool none = unknown.size() == adapter.modules().size();
        throw AdapterError("'" + file + "' does not fit this " + map.modelName() + " model" + saysMade + ": " +
                           std::to_string(unknown.size()) + " of its " + std::to_string(adapter.modules().size()) +
                           " modules match no weight of it: " + listNames(unknown) +
                           (none && made.empty() ? " (is it an adapter for another architecture?)" : ""));
    }
    // Every module found a weight, but the file says it was made for another family Easel knows: an SD 1.x
    // text-encoder-only LoRA has exactly the names and shapes of SDXL's first encoder, and would change it.
    const bool knownBase =
        adapter.base() == AdapterBase::SD1 || adapter.base() == AdapterBase::SD2 || adapter.base() == AdapterBase::SDXL;
    if (unknown.empty() && misfit.empty() && knownBase && !sameFamily) {
        throw AdapterError("'" + file + "' is an adapter for " + made +
                           " (its metadata or names say so), not for this " + map.modelName() + " model");
    }
    if (!misfit.empty()) {
        throw AdapterError("'" + file + "' does not fit this " + map.modelName() + " model" +
                           (made.empty() ? std::string(" (it was made for another architecture)") : saysMade) + ": " +
                           listNames(misfit));
    }
    return resolved;
}

}  // namespace easel::inference
