#pragma once
// easel-bench --roofline: the UNet step with guidance and the VAE decode of SD 1.5 geometry as a
// multiple of this machine's floor for them.

#include <string>
#include <vector>

namespace easel::bench {

// The CPU's name and the fastest bf16 path it offers (amx, avx512_bf16, avx512, avx2), from
// /proc/cpuinfo.
std::string cpuSummary();

// For each precision ("fp32", "bf16") at `size`²: times the graph (median of `steps` runs), takes its
// census, replays every distinct conv / linear / attention-product shape alone to measure the rate
// the kernels reach here, and prints per category FLOPs, time in the graph, time alone and the floor
// (conv and linear at their own measured rates; attention's products at the linear rate), then the
// graph's time as a multiple of the floor. `top` lists that many shapes that lose the most time
// against their replay.
int rooflineBenchmark(const std::vector<std::string>& precisions, int size, int steps, int threads, int top);

}  // namespace easel::bench
