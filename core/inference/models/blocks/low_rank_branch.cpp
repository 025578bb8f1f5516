#include "inference/models/blocks/low_rank_branch.h"

namespace easel::inference {
namespace {

// The attached branch, or null. named_children() of a plain Linear is empty, so this costs next to
// nothing on the inference path.
const LowRankBranchImpl* branchOf(const torch::nn::Module& module) {
    for (const auto& child : module.named_children()) {
        if (child.key() == kLowRankBranchName) return dynamic_cast<const LowRankBranchImpl*>(child.value().get());
    }
    return nullptr;
}

}  // namespace

LowRankBranchImpl::LowRankBranchImpl(torch::Tensor down_, torch::Tensor up_, double scale_)
    : down(std::move(down_)), up(std::move(up_)), scale(scale_) {}

torch::Tensor LowRankBranchImpl::forward(const torch::Tensor& x, bool conv) const {
    // The factors follow x's dtype (a bf16 base keeps its activations bf16); under autocast each op
    // picks its own.
    const auto d = down.to(x.scalar_type()), u = up.to(x.scalar_type());
    if (conv) {
        const auto h = torch::conv2d(x, d.view({d.size(0), d.size(1), 1, 1}));
        return torch::conv2d(h, u.view({u.size(0), u.size(1), 1, 1})).mul(scale);
    }
    return torch::linear(torch::linear(x, d), u).mul(scale);
}

torch::Tensor withBranch(torch::nn::LinearImpl& linear, const torch::Tensor& x) {
    auto y = linear.forward(x);
    if (const auto* branch = branchOf(linear)) y = y + branch->forward(x, false);
    return y;
}

torch::Tensor withBranch(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
    auto y = conv.forward(x);
    if (const auto* branch = branchOf(conv)) y = y + branch->forward(x, true);
    return y;
}

torch::Tensor withBranch(torch::nn::AnyModule& module, const torch::Tensor& x) {
    const auto& ptr = module.ptr();
    if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(ptr.get())) return withBranch(*linear, x);
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(ptr.get())) return withBranch(*conv, x);
    return module.forward(x);
}

}  // namespace easel::inference
