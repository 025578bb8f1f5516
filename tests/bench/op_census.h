#pragma once
// The FLOP-heavy operations one run of a graph dispatches (convolutions, linear layers and the
// attention products), each distinct shape with its count, FLOPs and the time spent in it, read from
// libtorch's RecordFunction callbacks. easel-bench --roofline replays each shape alone to measure what
// the kernels reach on this machine, which makes the graph's floor.

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace easel::bench {

enum class OpCategory { Conv, Linear, Attention };
const char* categoryName(OpCategory c);

struct TensorShape {
    std::vector<std::int64_t> sizes;
    std::vector<std::int64_t> strides;
    bool defined = true;
    auto operator<=>(const TensorShape&) const = default;
};

// One distinct call: the operator, its tensor operands (sizes and strides, so a replay has the same
// layout) and, for convolutions, stride / padding / dilation / groups.
struct OpShape {
    std::string op;
    OpCategory category = OpCategory::Linear;
    torch::ScalarType dtype = torch::kFloat32;
    std::vector<TensorShape> tensors;
    std::vector<std::int64_t> convParams;  // stride(2), padding(2), dilation(2), groups
    auto operator<=>(const OpShape&) const = default;
};

struct OpTally {
    std::int64_t count = 0;
    double flopsEach = 0;
    double seconds = 0;  // inside the graph, summed over the calls
};

struct OpCensus {
    std::map<OpShape, OpTally> ops;
    std::map<std::string, OpTally> topLevel;  // every operator called outside any other, by name
    double totalSeconds = 0;                  // the whole run
    double flops(OpCategory c) const;
    double secondsIn(OpCategory c) const;
};

// Runs `graph` once with the callbacks installed and returns what it dispatched. Only the outermost
// of nested operators counts (aten::linear, not the addmm inside it).
OpCensus takeCensus(const std::function<void()>& graph);

// Seconds of one call of `shape`, alone, on fresh random operands: the median of `repeats` runs after
// a warm-up.
double replaySeconds(const OpShape& shape, int repeats);

}  // namespace easel::bench
