#pragma once
// Hand-vectorised CPU kernels for the few passes where libtorch 1.13's generic bf16 kernels cost more
// than the matmuls around them (measured with easel-bench --roofline). Each is compiled for AVX-512
// (F + BW) and used only when the CPU has it; callers keep libtorch's path for everything else.

#include <cstdint>

namespace easel::inference::kernels {

// Whether this CPU runs the kernels below (AVX-512 F, BW and VL) and EASEL_KERNELS is not "off" (which
// keeps libtorch's kernels, to compare).
bool available();

// Softmax over each row of a row-major [rows, cols] bf16 matrix (raw bf16 bits), in place: max, exp
// and sum in float32, each result rounded once to bf16 (round to nearest even). -inf entries give 0;
// rows of -inf only give 0 everywhere. Rows are split across libtorch's intra-op threads.
void softmaxRowsBF16(std::uint16_t* data, std::int64_t rows, std::int64_t cols);

// GroupNorm (+ SiLU when `silu`) of a channels-last bf16 tensor [n, pixels, channels] (raw bf16 bits)
// into `out` of the same layout: per-channel sums in float32 over runs of pixels, gathered in float64,
// so that the group statistics keep float64 accuracy; then one pass that scales, shifts and applies
// SiLU in float32 and rounds once. `channels` must be a multiple of 16 and of `groups`; gamma and beta
// are float32 per channel. Reads x twice and writes out once.
void groupNormChannelsLastBF16(const std::uint16_t* x, std::uint16_t* out, std::int64_t n, std::int64_t pixels,
                               std::int64_t channels, std::int64_t groups, const float* gamma, const float* beta,
                               double eps, bool silu);

}  // namespace easel::inference::kernels
