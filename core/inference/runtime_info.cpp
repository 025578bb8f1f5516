#include "inference/runtime_info.h"

#include <torch/torch.h>
#include <torch/version.h>

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

}  // namespace easel::inference
