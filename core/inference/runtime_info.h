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

}  // namespace easel::inference
