#pragma once
// Writes the three networks as one original-layout single-file .safetensors checkpoint, readable by
// loadSingleFileCheckpoint (and by other SD tools, as it uses the same key names).

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

#include "inference/loading/checkpoint_loader.h"

namespace easel::inference {

// dtype: F16, BF16 or F32 for floating tensors; integer buffers keep their type.
void saveSingleFileCheckpoint(StableDiffusionModel& model, const std::filesystem::path& path, DType dtype,
                              const std::map<std::string, std::string>& metadata = {});

}  // namespace easel::inference
