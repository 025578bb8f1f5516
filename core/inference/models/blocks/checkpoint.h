#pragma once
// Gradient checkpointing (Chen et al. 2016, "Training deep nets with sublinear memory cost"): a block's
// forward pass keeps only its inputs for autograd, not its activations; the backward pass runs the
// block again with gradients on and backpropagates through that copy. Training memory falls to the
// blocks' inputs plus one block's activations, for one more forward pass per step.

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace easel::inference {

using CheckpointedBlock = std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs)>;

// f(inputs) with its activations dropped. Outside grad mode it is just f(inputs) (inside it, even when
// no input needs a gradient, since f's parameters may). The recomputation runs under the autocast settings of the
// forward call. `f` must be deterministic (no dropout), and it (with what it captures) must outlive the backward pass.
torch::Tensor checkpointed(CheckpointedBlock f, const std::vector<torch::Tensor>& inputs);

}  // namespace easel::inference
