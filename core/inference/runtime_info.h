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

}  // namespace easel::inference
