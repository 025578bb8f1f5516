#include "inference/adapters/adapter_stack.h"

#include <cmath>

#include "inference/tensor_utils.h"

namespace easel::inference {
namespace {

std::vector<ModelWeight> shapesOf(const std::map<std::string, torch::Tensor>& weights) {
    std::vector<ModelWeight> out;
    out.reserve(weights.size());
    for (const auto& [key, tensor] : weights) out.push_back({key, tensor.sizes().vec()});
    return out;
}

std::map<std::string, torch::Tensor> weightsOf(StableDiffusionModel& model) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& item : model.unet->named_parameters(true))
        out.emplace(model.detected.unetPrefix + item.key(), item.value());
    for (const auto& item : model.textModule->named_parameters(true))
        out.emplace(model.detected.textPrefix + item.key(), item.value());
    if (model.textModule2) {
        for (const auto& item : model.textModule2->named_parameters(true))
            out.emplace(model.detected.text2Prefix + item.key(), item.value());
    }
    return out;
}

// Tucker reconstruction (LyCORIS rebuild_tucker): out[p, r, k...] = Σ_ij core[i, j, k...] a[i, p] b[j, r],
// core [R1, R2, k...], a [R1, O], b [R2, I] -> [O, I * Π k].
torch::Tensor tucker(const torch::Tensor& core, const torch::Tensor& a, const torch::Tensor& b) {
    const auto flat = core.reshape({core.size(0), core.size(1), -1});
    const auto out = torch::einsum("ijk,ip,jr->prk", {flat, a.reshape({a.size(0), -1}), b.reshape({b.size(0), -1})});
    return out.reshape({out.size(0), -1});
}

bool sameList(const std::vector<AdapterWeight>& a, const std::vector<AdapterWeight>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].adapter != b[i].adapter || a[i].unetStrength != b[i].unetStrength ||
            a[i].textStrength != b[i].textStrength)
            return false;
    }
    return true;
}

}  // namespace

torch::Tensor adapterDelta(const Adapter& adapter, const ResolvedModule& resolved, const torch::Device& device) {
    const auto& m = *resolved.module;
    // float32 / float16 / bfloat16 inputs become float64 exactly.
    const auto get = [&](const char* role) {
        return toTensor(adapter.file().at(m.tensors.at(role))).to(device, torch::kFloat64);
    };
    const auto has = [&](const char* role) { return m.tensors.contains(role); };
    const auto rows = [](const torch::Tensor& t) { return t.reshape({t.size(0), -1}); };
    torch::Tensor delta;
    switch (m.algorithm) {
        case AdapterAlgorithm::LoRA: {
            const auto up = rows(get("up"));
            const auto down = rows(get("down"));
            delta = has("mid") ? tucker(get("mid"), up.t(), down) : torch::matmul(up, down);
            break;
        }
        case AdapterAlgorithm::LoHa: {
            if (has("hada_t1")) {
                delta = tucker(get("hada_t1"), get("hada_w1_a"), get("hada_w1_b")) *
                        tucker(get("hada_t2"), get("hada_w2_a"), get("hada_w2_b"));
            } else {
                delta = torch::matmul(rows(get("hada_w1_a")), rows(get("hada_w1_b"))) *
                        torch::matmul(rows(get("hada_w2_a")), rows(get("hada_w2_b")));
            }
            break;
        }
        case AdapterAlgorithm::LoKr: {
            const auto w1 = has("lokr_w1") ? get("lokr_w1") : torch::matmul(get("lokr_w1_a"), rows(get("lokr_w1_b")));
            torch::Tensor w2;
            if (has("lokr_w2")) {
                w2 = rows(get("lokr_w2"));
            } else if (has("lokr_t2")) {
                w2 = tucker(get("lokr_t2"), get("lokr_w2_a"), get("lokr_w2_b"));
            } else {
                w2 = torch::matmul(get("lokr_w2_a"), rows(get("lokr_w2_b")));
            }
            // Kronecker product of the 2-D halves; flattening w2's kernel dims before the product gives
            // the same element order as LyCORIS' 4-D torch.kron.
            delta = torch::kron(w1, w2);
            break;
        }
        case AdapterAlgorithm::Full:
            delta = get("diff");
            break;
    }
    return delta.reshape(resolved.target.shape);
}

AdapterStack::AdapterStack(StableDiffusionModel& model) : AdapterStack(model.detected, weightsOf(model)) {}

AdapterStack::AdapterStack(const DetectedModel& model, std::map<std::string, torch::Tensor> weights)
    : m_keyMap(model, shapesOf(weights)), m_weights(std::move(weights)) {}

std::vector<ResolvedModule> AdapterStack::check(const Adapter& adapter) const {
    auto resolved = resolveAdapter(adapter, m_keyMap);
    for (const auto& r : resolved) {
        if (!m_weights.contains(r.target.key))
            throw AdapterError("'" + adapter.path().filename().string() + "': weight '" + r.target.key +
                               "' is not part of the loaded model");
    }
    return resolved;
}

bool AdapterStack::apply(const std::vector<AdapterWeight>& adapters) {
    if (sameList(adapters, m_active)) return false;
    torch::NoGradGuard noGrad;
    // Validate everything before any weight changes.
    std::vector<std::vector<ResolvedModule>> resolved;
    for (const auto& a : adapters) {
        if (!a.adapter) throw AdapterError("an adapter in the list is missing");
        if (!std::isfinite(a.unetStrength) || !std::isfinite(a.textStrength))
            throw AdapterError("the strength of '" + a.adapter->name() + "' is not a finite number");
        resolved.push_back(check(*a.adapter));
    }
    // Which modules change each weight, at which factor (strength · alpha/rank, the factor first and
    // then the matrix, as the reference computes W + (strength · alpha/rank) · delta).
    struct Contribution {
        const Adapter* adapter;
        const ResolvedModule* module;
        double factor;
    };
    std::map<std::string, std::vector<Contribution>> byWeight;
    for (std::size_t i = 0; i < adapters.size(); ++i) {
        const auto& a = adapters[i];
        for (const auto& r : resolved[i]) {
            const double strength = r.target.component == AdapterComponent::UNet ? a.unetStrength : a.textStrength;
            if (strength != 0) byWeight[r.target.key].push_back({a.adapter.get(), &r, strength * r.module->scale});
        }
    }
    try {
        // Weights no longer changed go back to their base.
        for (auto it = m_backups.begin(); it != m_backups.end();) {
            if (byWeight.contains(it->first)) {
                ++it;
                continue;
            }
            m_weights.at(it->first).copy_(it->second);
            it = m_backups.erase(it);
        }
        // One weight at a time, so that only one float64 copy is alive.
        for (const auto& [key, contributions] : byWeight) {
            auto& live = m_weights.at(key);
            auto backup = m_backups.find(key);
            if (backup == m_backups.end())
                backup =
                    m_backups.emplace(key, live.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true)).first;
            // Base in float64 (exact), plus each change; copy_ rounds once to the weight's dtype.
            auto merged = backup->second.to(live.device(), torch::kFloat64, /*non_blocking=*/false, /*copy=*/true);
            for (const auto& c : contributions) {
                const auto& target = c.module->target;
                // Multiplied first and then added (not add_(delta, alpha), which may fuse the two).
                merged.narrow(0, target.rowOffset, target.shape[0])
                    .add_(adapterDelta(*c.adapter, *c.module, live.device()).mul_(c.factor));
            }
            live.copy_(merged);
        }
    } catch (...) {
        restore();
        throw;
    }
    m_active = adapters;
    return true;
}

void AdapterStack::restore() {
    torch::NoGradGuard noGrad;
    for (const auto& [key, backup] : m_backups) m_weights.at(key).copy_(backup);
    m_backups.clear();
    m_active.clear();
}

std::size_t AdapterStack::backupBytes() const {
    std::size_t bytes = 0;
    for (const auto& [key, backup] : m_backups) bytes += backup.nbytes();
    return bytes;
}

}  // namespace easel::inference
