#include "inference/runtime_info.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace easel::inference {

std::string RuntimeInfo::describe() const {
    return std::string(cudaAvailable ? "cuda" : "cpu") + " (" + std::to_string(intraOpThreads) + " threads, libtorch " +
           torchVersion + ")";
}

RuntimeInfo runtimeInfo() {
    RuntimeInfo info;
    info.torchVersion = TORCH_VERSION;
    info.intraOpThreads = torch::get_num_threads();  // after Engine has set it to the core count
    info.cudaAvailable = torch::cuda::is_available();
    return info;
}

bool cpuHasFastBF16() {
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
#else
    return false;
#endif
}

std::string effectivePrecision(const std::string& requested, bool cuda, bool fastBf16, bool forceBf16) {
    if (requested == "bf16" && !cuda && !fastBf16 && !forceBf16) return "fp32";
    return requested;
}

void restartWithoutSlowBlasCoreType(char** argv) {
    const char* coreType = std::getenv("OPENBLAS_CORETYPE");
    if (coreType == nullptr || std::getenv("EASEL_KEEP_OPENBLAS_CORETYPE") != nullptr) return;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!__builtin_cpu_supports("avx512f")) return;
#else
    return;
#endif
    std::string name(coreType);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const char* avx512 : {"skylakex", "cooperlake", "sapphirerapids"}) {
        if (name == avx512) return;
    }
    std::fprintf(stderr,
                 "easel: OPENBLAS_CORETYPE=%s keeps OpenBLAS off this CPU's AVX-512 kernels (float32 ~1.5x "
                 "slower); restarting without it (EASEL_KEEP_OPENBLAS_CORETYPE=1 keeps it)\n",
                 coreType);
    ::unsetenv("OPENBLAS_CORETYPE");
    ::execv("/proc/self/exe", argv);
    std::fprintf(stderr, "easel: could not restart (%s); going on with OPENBLAS_CORETYPE=%s\n", std::strerror(errno),
                 coreType);
}

}  // namespace easel::inference
