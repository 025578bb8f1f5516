#pragma once
// A low-rank branch beside a Linear or 1x1 Conv2d: y = W x + b + scale · up(down(x)) (LoRA, Hu et al. 2021,
// in the form PEFT and kohya-ss train it). The LoRA trainer (training/lora_network.h) hangs one on each
// module it adapts, as a child named "lora"; the blocks' forward passes go through withBranch(), so a
// backward pass reaches only the small factors: no gradient of the full weight and no adapted copy of W.
// A module without a branch runs exactly as before.

#include <torch/torch.h>

namespace easel::inference {

struct LowRankBranchImpl : torch::nn::Module {
    // down [rank, in], up [out, rank]: the trainer's tensors, shared, not registered here (the model's
    // parameter list stays the model's own).
    LowRankBranchImpl(torch::Tensor down, torch::Tensor up, double scale);
    // x [..., in] for a Linear, [N, in, H, W] for a 1x1 convolution (conv = true).
    torch::Tensor forward(const torch::Tensor& x, bool conv) const;

    torch::Tensor down, up;
    double scale;
};
TORCH_MODULE(LowRankBranch);

inline constexpr const char* kLowRankBranchName = "lora";

// The module's output plus its branch's, if one is attached.
torch::Tensor withBranch(torch::nn::LinearImpl& linear, const torch::Tensor& x);
torch::Tensor withBranch(torch::nn::Conv2dImpl& conv, const torch::Tensor& x);
// A Linear or a 1x1 Conv2d held as an AnyModule (SpatialTransformer's proj_in / proj_out).
torch::Tensor withBranch(torch::nn::AnyModule& module, const torch::Tensor& x);

}  // namespace easel::inference
