#pragma once
// easel-bench --train lora|dreambooth: seconds per fine-tuning step and peak RSS on SD 1.5 geometry.

#include <string>

namespace easel::bench {

// method: "lora" or "dreambooth"; precision "bf16" (autocast over fp32 weights) or "fp32";
// checkpointing: 1 on, 0 off, -1 the trainer's default (on for DreamBooth, off for LoRA).
int trainingBenchmark(const std::string& method, const std::string& precision, int rank, int size, int steps,
                      int threads, int checkpointing);

}  // namespace easel::bench
