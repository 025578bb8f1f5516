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

}  // namespace easel::inference
