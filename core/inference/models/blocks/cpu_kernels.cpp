#include "inference/models/blocks/cpu_kernels.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized reports
// at every use (a known false positive of the headers, not of this file).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define EASEL_X86_KERNELS 1
#endif

namespace easel::inference::kernels {

bool available() {
#ifdef EASEL_X86_KERNELS
    static const bool has =
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        !(std::getenv("EASEL_KERNELS") != nullptr && std::strcmp(std::getenv("EASEL_KERNELS"), "off") == 0);
    return has;
#else
    return false;
#endif
}

#ifdef EASEL_X86_KERNELS
namespace {

#define EASEL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// 16 bf16 values (the high halves of float32) widened to float32.
EASEL_AVX512 inline __m512 loadBF16(const std::uint16_t* p, __mmask16 mask) {
    const __m256i bits = _mm256_maskz_loadu_epi16(mask, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}

// float32 to bf16, rounding to nearest even (finite inputs).
EASEL_AVX512 inline void storeBF16(std::uint16_t* p, __m512 v, __mmask16 mask) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
    _mm256_mask_storeu_epi16(p, mask, _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
}

// e^x for x <= 0 (softmax's shifted scores) to ~5e-5 relative, far below bf16's rounding (2^-9): with
// x log2(e) = n + f, |f| <= 1/2, 2^f by its Taylor series in f to f^4, times 2^n by scalef (0 below
// 2^-150). Eight vector operations for 16 values: the softmax of a 4096-token attention computes 1.3
// billion of these per SD 1.5 step.
EASEL_AVX512 inline __m512 expNonPositive(__m512 x) {
    const __m512 t = _mm512_mul_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(1.44269504088896341f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(9.61812911e-3f);                  // ln2^4 / 24
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.55041087e-2f));  // ln2^3 / 6
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.40226507e-1f));  // ln2^2 / 2
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.93147181e-1f));  // ln2
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

// Horizontal max / sum of 16 lanes (GCC 12's _mm512_reduce_* warn about an uninitialised value inside).
EASEL_AVX512 inline float laneMax(__m512 v) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    return *std::max_element(lanes, lanes + 16);
}
EASEL_AVX512 inline float laneSum(__m512 v) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    float sum = 0;
    for (float x : lanes) sum += x;
    return sum;
}

inline __mmask16 tailMask(std::int64_t left) {
    return left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// One row: the max, then e^(x - max) into `scratch` (float32, in L1) with their sum, then the scaled
// results back as bf16: the row is read twice and written once.
EASEL_AVX512 void softmaxRow(std::uint16_t* row, std::int64_t cols, float* scratch) {
    const float lowest = -std::numeric_limits<float>::infinity();
    __m512 vmax = _mm512_set1_ps(lowest);
    for (std::int64_t j = 0; j < cols; j += 16) {
        const auto mask = tailMask(cols - j);
        vmax = _mm512_mask_max_ps(vmax, mask, vmax, loadBF16(row + j, mask));
    }
    const float max = laneMax(vmax);
    if (max == lowest) {  // nothing to attend to
        for (std::int64_t j = 0; j < cols; j += 16) storeBF16(row + j, _mm512_setzero_ps(), tailMask(cols - j));
        return;
    }
    const __m512 shift = _mm512_set1_ps(max);
    __m512 vsum = _mm512_setzero_ps();
    for (std::int64_t j = 0; j < cols; j += 16) {
        const auto mask = tailMask(cols - j);
        const __m512 e = expNonPositive(_mm512_sub_ps(loadBF16(row + j, mask), shift));
        vsum = _mm512_mask_add_ps(vsum, mask, vsum, e);
        _mm512_mask_storeu_ps(scratch + j, mask, e);
    }
    const __m512 scale = _mm512_set1_ps(1.0f / laneSum(vsum));
    for (std::int64_t j = 0; j < cols; j += 16) {
        const auto mask = tailMask(cols - j);
        storeBF16(row + j, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, scratch + j), scale), mask);
    }
}

// e^x for any x (clamped to float32's range), for SiLU.
EASEL_AVX512 inline __m512 expAny(__m512 x) {
    return expNonPositive(_mm512_min_ps(x, _mm512_set1_ps(88.0f)));  // (the polynomial holds for n up to 127)
}

// Per-channel sums of (x - shift) and (x - shift)^2 over pixels [p0, p1) of one sample, 16 channels at a
// time, in float32 over runs of 64 pixels, added into float64 totals.
EASEL_AVX512 void channelSums(const std::uint16_t* x, std::int64_t p0, std::int64_t p1, std::int64_t channels,
                              const float* shift, double* sum1, double* sum2) {
    constexpr std::int64_t kRun = 64;
    for (std::int64_t c = 0; c < channels; c += 16) {
        const __m512 k = _mm512_loadu_ps(shift + c);
        for (std::int64_t r0 = p0; r0 < p1; r0 += kRun) {
            const auto r1 = std::min(p1, r0 + kRun);
            __m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
            for (std::int64_t p = r0; p < r1; ++p) {
                const __m512 d = _mm512_sub_ps(loadBF16(x + p * channels + c, 0xFFFF), k);
                s1 = _mm512_add_ps(s1, d);
                s2 = _mm512_fmadd_ps(d, d, s2);
            }
            alignas(64) float a[16], b[16];
            _mm512_store_ps(a, s1);
            _mm512_store_ps(b, s2);
            for (int i = 0; i < 16; ++i) {
                sum1[c + i] += a[i];
                sum2[c + i] += b[i];
            }
        }
    }
}

// out = silu(x * scale + shift) (or without silu) over pixels [p0, p1) of one sample.
EASEL_AVX512 void scaleShift(const std::uint16_t* x, std::uint16_t* out, std::int64_t p0, std::int64_t p1,
                             std::int64_t channels, const float* scale, const float* shift, bool silu) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (std::int64_t p = p0; p < p1; ++p) {
        for (std::int64_t c = 0; c < channels; c += 16) {
            __m512 y = _mm512_fmadd_ps(loadBF16(x + p * channels + c, 0xFFFF), _mm512_loadu_ps(scale + c),
                                       _mm512_loadu_ps(shift + c));
            if (silu) y = _mm512_div_ps(y, _mm512_add_ps(one, expAny(_mm512_sub_ps(_mm512_setzero_ps(), y))));
            storeBF16(out + p * channels + c, y, 0xFFFF);
        }
    }
}

}  // namespace
#endif

void groupNormChannelsLastBF16(const std::uint16_t* x, std::uint16_t* out, std::int64_t n, std::int64_t pixels,
                               std::int64_t channels, std::int64_t groups, const float* gamma, const float* beta,
                               double eps, bool silu) {
#ifdef EASEL_X86_KERNELS
    if (!available()) throw std::logic_error("groupNormChannelsLastBF16 needs AVX-512 (check kernels::available())");
    if (channels % 16 != 0 || channels % groups != 0 || pixels < 1)
        throw std::invalid_argument("groupNormChannelsLastBF16: channels must be a multiple of 16 and of groups");
    RECORD_USER_SCOPE("easel::group_norm_bf16");
    const auto c = static_cast<std::size_t>(channels);
    const auto perGroup = channels / groups;
    const double count = static_cast<double>(pixels);
    for (std::int64_t s = 0; s < n; ++s) {
        const std::uint16_t* xs = x + s * pixels * channels;
        std::uint16_t* os = out + s * pixels * channels;
        // The first pixel's values as each channel's shift: sums of small differences lose nothing.
        std::vector<float> shift(c);
        for (std::size_t i = 0; i < c; ++i) {
            const std::uint32_t bits = static_cast<std::uint32_t>(xs[i]) << 16;
            std::memcpy(&shift[i], &bits, sizeof(float));
        }
        std::vector<double> sum1(c, 0.0), sum2(c, 0.0);
        std::mutex merge;
        at::parallel_for(0, pixels, 256, [&](std::int64_t p0, std::int64_t p1) {
            std::vector<double> a(c, 0.0), b(c, 0.0);
            channelSums(xs, p0, p1, channels, shift.data(), a.data(), b.data());
            std::lock_guard lock(merge);
            for (std::size_t i = 0; i < c; ++i) sum1[i] += a[i], sum2[i] += b[i];
        });
        std::vector<float> scale(c), offset(c);
        for (std::int64_t g = 0; g < groups; ++g) {
            double mean = 0;
            for (std::int64_t i = g * perGroup; i < (g + 1) * perGroup; ++i)
                mean += shift[static_cast<std::size_t>(i)] + sum1[static_cast<std::size_t>(i)] / count;
            mean /= static_cast<double>(perGroup);
            double m2 = 0;  // squared deviations from the group mean: within each channel, then between
            for (std::int64_t i = g * perGroup; i < (g + 1) * perGroup; ++i) {
                const auto k = static_cast<std::size_t>(i);
                const double channelMean = shift[k] + sum1[k] / count;
                m2 += sum2[k] - sum1[k] * sum1[k] / count + count * (channelMean - mean) * (channelMean - mean);
            }
            const double rstd = 1.0 / std::sqrt(std::max(0.0, m2) / (count * static_cast<double>(perGroup)) + eps);
            for (std::int64_t i = g * perGroup; i < (g + 1) * perGroup; ++i) {
                const auto k = static_cast<std::size_t>(i);
                scale[k] = static_cast<float>(rstd * gamma[k]);
                offset[k] = static_cast<float>(beta[k] - mean * rstd * gamma[k]);
            }
        }
        at::parallel_for(0, pixels, 64, [&](std::int64_t p0, std::int64_t p1) {
            scaleShift(xs, os, p0, p1, channels, scale.data(), offset.data(), silu);
        });
    }
#else
    (void)x, (void)out, (void)n, (void)pixels, (void)channels, (void)groups, (void)gamma, (void)beta, (void)eps,
        (void)silu;
    throw std::logic_error("groupNormChannelsLastBF16 needs AVX-512 (check kernels::available())");
#endif
}

void softmaxRowsBF16(std::uint16_t* data, std::int64_t rows, std::int64_t cols) {
#ifdef EASEL_X86_KERNELS
    if (!available()) throw std::logic_error("softmaxRowsBF16 needs AVX-512 (check kernels::available())");
    RECORD_USER_SCOPE("easel::softmax_bf16");  // named in profiles and easel-bench --roofline
    at::parallel_for(0, rows, 16, [&](std::int64_t begin, std::int64_t end) {
        std::vector<float> scratch(static_cast<std::size_t>(cols));
        for (std::int64_t i = begin; i < end; ++i) softmaxRow(data + i * cols, cols, scratch.data());
    });
#else
    (void)data, (void)rows, (void)cols;
    throw std::logic_error("softmaxRowsBF16 needs AVX-512 (check kernels::available())");
#endif
}

}  // namespace easel::inference::kernels
