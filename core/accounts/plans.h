#pragma once
// Plans as data. An admin moves a user between them; the new limits apply from the next request.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace easel::accounts {

struct Plan {
    std::string name;
    std::optional<std::int64_t> imageQuota;  // images an account may generate in all; empty = unlimited
    int maxQueued = 1;                       // requests waiting or running at once
    int maxConcurrent = 1;                   // jobs running at once
    int priority = 0;                        // higher runs first
    int requestsPerMinute = 10;
    int maxSteps = 50;  // num_inference_steps is clamped to this
    // Bytes of kept images and uploads; past it, new uploads and generations are refused (507).
    std::int64_t storageBytes = 100ll << 20;
    // Fine-tunes (DreamBooth and LoRA) an account may run in all; empty = unlimited. A training counts
    // from its submission while queued, running or succeeded; a failed or cancelled one is given back,
    // and deleting the trained model gives nothing back (the GPU time was spent), as with imageQuota.
    std::optional<std::int64_t> trainingQuota = 1;
};

const std::vector<Plan>& plans();
// The named plan, or nullptr.
const Plan* findPlan(const std::string& name);
// "free, basic, standard, premium"
std::string planNames();

}  // namespace easel::accounts
