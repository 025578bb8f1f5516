#pragma once
#include <string>

namespace easel::inference {

struct RuntimeInfo {
    std::string torchVersion;
    int intraOpThreads = 0;
    bool cudaAvailable = false;
    std::string describe() const;  // "cpu (2 threads, libtorch 1.13.1)"
};

RuntimeInfo runtimeInfo();

// Whether this CPU runs libtorch 1.13's bf16 matmuls through oneDNN (AVX-512 BW/VL/DQ, the check
// libtorch makes). Without it, bf16 Linear layers take a single-threaded fallback that is tens of times
// slower than fp32 (measured: an AVX2-only EPYC spent minutes on one SD 1.5 UNet step).
bool cpuHasFastBF16();

// The precision a model asked to run at `requested` runs at: bf16 on a CPU without fast bf16 runs fp32
// instead (there fp32 is many times faster; it takes twice the weights' memory), unless `forceBf16`
// (EASEL_FORCE_BF16=1). Every other request runs as asked.
std::string effectivePrecision(const std::string& requested, bool cuda, bool fastBf16, bool forceBf16);

// OPENBLAS_CORETYPE pins OpenBLAS to one CPU's kernels when the library loads, before main(). Some
// environments set it to Haswell (AVX2): on an AVX-512 CPU that made float32 matmuls, and so an SD 1.5
// UNet step, ~1.5x slower (measured: 10.6 s vs 7.1 s per 512x512 step on a 2-core AVX-512 EPYC).
// Call first thing in main(): when the variable names a core type without AVX-512 on a CPU with it,
// this says so on stderr and re-executes the program without it (EASEL_KEEP_OPENBLAS_CORETYPE=1
// keeps it). Returns only when nothing needs changing or the re-exec failed.
void restartWithoutSlowBlasCoreType(char** argv);

}  // namespace easel::inference
