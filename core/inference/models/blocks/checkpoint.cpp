#include "inference/models/blocks/checkpoint.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <stdexcept>

namespace easel::inference {
namespace {

// The backward node of one checkpointed call: its edges lead to the inputs; applying it recomputes
// the block and backpropagates the incoming gradient through the recomputation (the parameters'
// gradients accumulate there as in any backward pass).
struct CheckpointBackward final : torch::autograd::Node {
    CheckpointedBlock f;
    std::vector<torch::Tensor> inputs;  // detached
    std::vector<bool> needsGrad;
    bool autocast = false;
    at::ScalarType autocastDtype = at::kBFloat16;

    torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
        if (inputs.empty()) throw std::runtime_error("a checkpointed block was backpropagated twice");
        std::vector<torch::Tensor> again;
        for (std::size_t i = 0; i < inputs.size(); ++i)
            again.push_back(inputs[i].defined() ? inputs[i].detach().requires_grad_(needsGrad[i]) : inputs[i]);
        torch::Tensor out;
        {
            torch::AutoGradMode gradOn(true);
            const bool wasAutocast = at::autocast::is_cpu_enabled();
            const auto wasDtype = at::autocast::get_autocast_cpu_dtype();
            at::autocast::set_autocast_cpu_dtype(autocastDtype);
            at::autocast::set_cpu_enabled(autocast);
            try {
                out = f(again);
            } catch (...) {
                at::autocast::set_cpu_enabled(wasAutocast);
                at::autocast::set_autocast_cpu_dtype(wasDtype);
                throw;
            }
            at::autocast::set_cpu_enabled(wasAutocast);
            at::autocast::set_autocast_cpu_dtype(wasDtype);
            if (autocast) at::autocast::clear_cache();
        }
        if (out.requires_grad() && grads[0].defined()) torch::autograd::backward({out}, {grads[0]});
        torch::autograd::variable_list result;
        for (std::size_t i = 0; i < again.size(); ++i)
            result.push_back(needsGrad[i] ? again[i].grad() : torch::Tensor());
        inputs.clear();  // the memory goes as soon as the block is done
        return result;
    }

    void release_variables() override { inputs.clear(); }
};

}  // namespace

torch::Tensor checkpointed(CheckpointedBlock f, const std::vector<torch::Tensor>& inputs) {
    // The inputs' flags only say which input gradients to return (see the header).
    if (!torch::GradMode::is_enabled()) return f(inputs);
    torch::Tensor out;
    {
        torch::NoGradGuard noGrad;
        out = f(inputs);
    }
    auto node = std::make_shared<CheckpointBackward>();
    node->f = std::move(f);
    for (const auto& t : inputs) {
        node->inputs.push_back(t.defined() ? t.detach() : t);
        node->needsGrad.push_back(t.defined() && t.requires_grad());
    }
    node->autocast = at::autocast::is_cpu_enabled();
    node->autocastDtype = at::autocast::get_autocast_cpu_dtype();
    node->set_next_edges(torch::autograd::collect_next_edges(inputs));
    torch::autograd::set_history(out, node);
    return out;
}

}  // namespace easel::inference
