#pragma once
// Merges LoRA-family adapters into a loaded model's weights and takes them out again bit for bit,
// without reloading the base. libtorch: include only from inference .cpp files and tests.
//
// The merge (kohya's merge_to, diffusers' fuse_lora, A1111's <lora:name:strength>), per weight W:
//   W' = round_to_dtype(W + Σ_adapters strength · scale · delta),   scale = alpha / rank,
// computed in float64 and rounded once to the weight's dtype. delta is up @ down (LoRA / LoCon,
// Tucker mid core if any), (w1_a @ w1_b) ⊙ (w2_a @ w2_b) (LoHa), w1 ⊗ w2 (LoKr), reshaped to W.
// The weights W holds before the first merge are kept (a CPU copy of each changed weight, in its own
// dtype), so restore() or a later apply() with another set writes them back exactly: a request
// without a LoRA after one with it sees the base model's exact outputs.
//
// How the engine calls it (one stack per loaded model, under the engine's mutex):
//   after loading and moving the model to its device and dtype:
//       adapters.emplace(model);                          // std::optional<AdapterStack>
//   per request, before the pipeline runs (an empty list = the base model):
//       adapters->apply({{cache.get("a.safetensors"), 0.8, 0.8}, {cache.get("b..."), 1.0, 0.5}});
//   apply() returns false without touching anything when the list equals the active one (same
//   Adapter objects, same strengths, same order), so keep opened Adapters in a cache of
//   std::shared_ptr<const Adapter> (keyed by path and modification time) and pass the same objects.
//   AdapterError (the user's mistake: a 400) is thrown before any weight changes; check() runs the same
//   validation without merging, for request validation. Drop the stack before the model goes.
// Cost: one float64 matmul per module on the weights' device; memory: the CPU copies (backupBytes()).

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "inference/adapters/adapter.h"
#include "inference/adapters/adapter_key_map.h"
#include "inference/loading/checkpoint_loader.h"

namespace easel::inference {

struct AdapterWeight {
    std::shared_ptr<const Adapter> adapter;
    double unetStrength = 1.0;
    double textStrength = 1.0;  // A1111's <lora:name:te:unet> spelling puts te first; here it is named
};

// One module's change before scaling (no alpha / rank, no strength), float64 on `device`, shaped like
// its target's part (target.shape).
torch::Tensor adapterDelta(const Adapter& adapter, const ResolvedModule& module, const torch::Device& device);

class AdapterStack {
public:
    // The UNet and text-encoder weights of a loaded model, on whatever device and dtype it runs in.
    explicit AdapterStack(StableDiffusionModel& model);
    // Any tensors under original-layout keys (e.g. a checkpoint read into memory, to write a merged
    // copy); they are changed in place.
    AdapterStack(const DetectedModel& model, std::map<std::string, torch::Tensor> weights);
    AdapterStack(const AdapterStack&) = delete;
    AdapterStack& operator=(const AdapterStack&) = delete;

    // Makes the weights base + the listed adapters. Returns false when the list equals the active
    // one. Throws AdapterError (a module that fits no weight, a non-finite strength) with nothing
    // changed; on any other failure the base is restored and the error rethrown.
    bool apply(const std::vector<AdapterWeight>& adapters);
    // The base weights, bit for bit; frees the copies.
    void restore();
    // apply()'s validation of one adapter against this model, without merging.
    std::vector<ResolvedModule> check(const Adapter& adapter) const;

    const std::vector<AdapterWeight>& active() const { return m_active; }
    const AdapterKeyMap& keyMap() const { return m_keyMap; }
    std::size_t backupBytes() const;

private:
    AdapterKeyMap m_keyMap;
    std::map<std::string, torch::Tensor> m_weights;  // original key -> live tensor
    std::map<std::string, torch::Tensor> m_backups;  // original key -> base copy (CPU, same dtype)
    std::vector<AdapterWeight> m_active;
};

}  // namespace easel::inference
