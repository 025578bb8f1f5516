#include "op_census.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "bench_timing.h"

namespace easel::bench {

const char* categoryName(OpCategory c) {
    switch (c) {
        case OpCategory::Conv:
            return "conv";
        case OpCategory::Linear:
            return "linear";
        case OpCategory::Attention:
            return "attention";
    }
    return "?";
}

double OpCensus::flops(OpCategory c) const {
    double sum = 0;
    for (const auto& [shape, tally] : ops)
        if (shape.category == c) sum += tally.flopsEach * static_cast<double>(tally.count);
    return sum;
}

double OpCensus::secondsIn(OpCategory c) const {
    double sum = 0;
    for (const auto& [shape, tally] : ops)
        if (shape.category == c) sum += tally.seconds;
    return sum;
}

namespace {

using Clock = std::chrono::steady_clock;

// The operators counted, the category of each, and where a convolution keeps its parameters
// (index of stride, padding, dilation, groups in the schema).
struct Known {
    const char* name;
    OpCategory category;
    int stride = -1, padding = -1, dilation = -1, groups = -1;
};
constexpr Known kKnown[] = {
    {"aten::conv2d", OpCategory::Conv, 3, 4, 5, 6},
    {"aten::convolution", OpCategory::Conv, 3, 4, 5, 8},
    {"aten::_convolution", OpCategory::Conv, 3, 4, 5, 8},
    {"aten::mkldnn_convolution", OpCategory::Conv, 4, 3, 5, 6},
    {"aten::linear", OpCategory::Linear},
    {"aten::mm", OpCategory::Linear},
    {"aten::addmm", OpCategory::Linear},
    {"aten::bmm", OpCategory::Attention},
    {"aten::baddbmm", OpCategory::Attention},
    {"aten::matmul", OpCategory::Attention},
};

const Known* knownOp(const char* name) {
    for (const auto& k : kKnown)
        if (std::strcmp(k.name, name) == 0) return &k;
    return nullptr;
}

TensorShape shapeOf(const c10::IValue& v) {
    TensorShape s;
    if (!v.isTensor() || !v.toTensor().defined()) {
        s.defined = false;
        return s;
    }
    const auto& t = v.toTensor();
    s.sizes = t.sizes().vec();
    s.strides = t.strides().vec();
    return s;
}

double numel(const TensorShape& s) {
    double n = 1;
    for (auto d : s.sizes) n *= static_cast<double>(d);
    return n;
}

// FLOPs of one call (a multiply-add counts 2).
double flopsOf(const OpShape& shape) {
    const auto& t = shape.tensors;
    if (shape.category == OpCategory::Conv) {
        const auto& in = t[0].sizes;
        const auto& w = t[1].sizes;
        const auto& p = shape.convParams;
        double outPixels = 1;
        for (int i = 0; i < 2; ++i) {
            const auto k = w[2 + i];
            outPixels *= static_cast<double>((in[2 + i] + 2 * p[2 + i] - p[4 + i] * (k - 1) - 1) / p[i] + 1);
        }
        return 2.0 * static_cast<double>(in[0]) * outPixels * numel(t[1]);
    }
    // Products: the last two operands are [..., m, k] and [..., k, n] (linear's weight is [n, k]).
    if (shape.op == "aten::linear") return 2.0 * numel(t[0]) / static_cast<double>(t[0].sizes.back()) * numel(t[1]);
    const auto& a = t[t.size() - 2].sizes;
    const auto& b = t[t.size() - 1].sizes;
    if (a.size() < 2 || b.size() < 2) return 2.0 * std::max(numel(t[t.size() - 2]), numel(t[t.size() - 1]));
    const double m = static_cast<double>(a[a.size() - 2]), k = static_cast<double>(a.back()),
                 n = static_cast<double>(b.back());
    const double batch = std::max(numel(t[t.size() - 2]) / (m * k), numel(t[t.size() - 1]) / (k * n));
    return 2.0 * batch * m * k * n;
}

struct Frame final : at::ObserverContext {
    bool known = false;    // a conv / linear / product operator
    bool counted = false;  // ... the outermost one, parsed
    bool topLevel = false;
    const char* name = "";
    OpShape shape;
    Clock::time_point start;
};

OpCensus* g_census = nullptr;  // the census being taken (one at a time)
std::mutex g_mutex;
thread_local int t_depth = 0;     // counted operators open on this thread
thread_local int t_anyDepth = 0;  // operators of any kind open on this thread

void parse(const at::RecordFunction& fn, const Known& known, Frame& frame) {
    const auto inputs = fn.inputs();
    auto& shape = frame.shape;
    shape.op = known.name;
    shape.category = known.category;
    const bool conv = known.category == OpCategory::Conv;
    const bool threeOperands =
        conv || shape.op == "aten::linear" || shape.op == "aten::baddbmm" || shape.op == "aten::addmm";
    const std::size_t operands = threeOperands ? 3 : 2;
    if (inputs.size() < operands || !inputs[0].isTensor()) return;
    for (std::size_t i = 0; i < operands; ++i) shape.tensors.push_back(shapeOf(inputs[i]));
    shape.dtype = inputs[conv || shape.op == "aten::linear" ? 0 : operands - 1].toTensor().scalar_type();
    if (conv) {
        for (int index : {known.stride, known.padding, known.dilation}) {
            if (static_cast<std::size_t>(index) >= inputs.size() || !inputs[index].isIntList()) return;
            auto v = inputs[index].toIntVector();
            if (v.size() == 1) v.push_back(v[0]);
            shape.convParams.insert(shape.convParams.end(), v.begin(), v.begin() + 2);
        }
        if (static_cast<std::size_t>(known.groups) >= inputs.size() || !inputs[known.groups].isInt()) return;
        shape.convParams.push_back(inputs[known.groups].toInt());
        if (shape.tensors[0].sizes.size() != 4 || shape.tensors[1].sizes.size() != 4) return;
    }
    // A product with a 2-D right operand multiplies by a weight: a linear layer however it is spelled
    // (nn::Linear on a 3-D input reaches aten::matmul).
    if (shape.category == OpCategory::Attention && shape.tensors.back().sizes.size() == 2)
        shape.category = OpCategory::Linear;
    frame.counted = true;
}

std::unique_ptr<at::ObserverContext> onStart(const at::RecordFunction& fn) {
    auto frame = std::make_unique<Frame>();
    frame->name = fn.name();
    frame->topLevel = t_anyDepth++ == 0;
    if (const auto* known = knownOp(fn.name())) {
        frame->known = true;
        if (t_depth++ == 0) parse(fn, *known, *frame);  // not inside another counted operator
    }
    frame->start = Clock::now();
    return frame;
}

void onEnd(const at::RecordFunction&, at::ObserverContext* context) {
    if (context == nullptr) return;
    const auto end = Clock::now();
    auto* frame = static_cast<Frame*>(context);
    --t_anyDepth;
    if (frame->known) --t_depth;
    if (!frame->counted && !frame->topLevel) return;
    const double seconds = std::chrono::duration<double>(end - frame->start).count();
    std::lock_guard lock(g_mutex);
    if (g_census == nullptr) return;
    if (frame->topLevel) {
        auto& top = g_census->topLevel[frame->name];
        ++top.count;
        top.seconds += seconds;
    }
    if (frame->counted) {
        auto& tally = g_census->ops[frame->shape];
        if (tally.count++ == 0) tally.flopsEach = flopsOf(frame->shape);
        tally.seconds += seconds;
    }
}

// Random operands laid out as recorded (strides included, so transposed and broadcast views replay
// as views).
torch::Tensor operand(const TensorShape& s, torch::ScalarType dtype) {
    if (!s.defined) return {};
    std::int64_t span = 1;
    for (std::size_t i = 0; i < s.sizes.size(); ++i) {
        if (s.sizes[i] == 0) return torch::empty(s.sizes, torch::TensorOptions().dtype(dtype));
        span += (s.sizes[i] - 1) * s.strides[i];
    }
    return torch::randn({span}).to(dtype).as_strided(s.sizes, s.strides);
}

}  // namespace

OpCensus takeCensus(const std::function<void()>& graph) {
    OpCensus census;
    {
        std::lock_guard lock(g_mutex);
        if (g_census != nullptr) throw std::logic_error("takeCensus: one census at a time");
        g_census = &census;
    }
    const auto handle = at::addGlobalCallback(at::RecordFunctionCallback(&onStart, &onEnd).needsInputs(true));
    const auto start = Clock::now();
    try {
        graph();
    } catch (...) {
        at::removeCallback(handle);
        std::lock_guard lock(g_mutex);
        g_census = nullptr;
        throw;
    }
    census.totalSeconds = std::chrono::duration<double>(Clock::now() - start).count();
    at::removeCallback(handle);
    std::lock_guard lock(g_mutex);
    g_census = nullptr;
    return census;
}

double replaySeconds(const OpShape& shape, int repeats) {
    torch::NoGradGuard noGrad;
    std::vector<torch::Tensor> t;
    for (const auto& s : shape.tensors) t.push_back(operand(s, shape.dtype));
    std::function<void()> call;
    const auto& op = shape.op;
    if (shape.category == OpCategory::Conv) {
        const auto& p = shape.convParams;
        const std::vector<std::int64_t> stride{p[0], p[1]}, padding{p[2], p[3]}, dilation{p[4], p[5]};
        call = [&, stride, padding, dilation] { (void)at::conv2d(t[0], t[1], t[2], stride, padding, dilation, p[6]); };
    } else if (op == "aten::linear") {
        call = [&] { (void)at::linear(t[0], t[1], t[2]); };
    } else if (op == "aten::mm") {
        call = [&] { (void)at::mm(t[0], t[1]); };
    } else if (op == "aten::addmm") {
        call = [&] { (void)at::addmm(t[0], t[1], t[2]); };
    } else if (op == "aten::bmm") {
        call = [&] { (void)at::bmm(t[0], t[1]); };
    } else if (op == "aten::baddbmm") {
        call = [&] { (void)at::baddbmm(t[0], t[1], t[2]); };
    } else {
        call = [&] { (void)at::matmul(t[0], t[1]); };
    }
    return medianSeconds(call, repeats);
}

}  // namespace easel::bench
