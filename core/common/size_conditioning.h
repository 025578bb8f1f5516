#pragma once
// SDXL's size conditioning of one request (sgm original_size_as_tuple, crop_coords_top_left,
// target_size_as_tuple), in pixels; 0 means the image's own width / height (and no crop). The API
// fields, the stored job and the engine's request share it, and kFields names each field once.

#include <array>
#include <string_view>
#include <utility>

namespace easel {

struct SizeConditioning {
    int originalWidth = 0;
    int originalHeight = 0;
    int cropTop = 0;
    int cropLeft = 0;
    int targetWidth = 0;
    int targetHeight = 0;

    // The JSON name (API and stored job) of each field.
    static constexpr std::array<std::pair<std::string_view, int SizeConditioning::*>, 6> kFields{{
        {"original_width", &SizeConditioning::originalWidth},
        {"original_height", &SizeConditioning::originalHeight},
        {"crop_top", &SizeConditioning::cropTop},
        {"crop_left", &SizeConditioning::cropLeft},
        {"target_width", &SizeConditioning::targetWidth},
        {"target_height", &SizeConditioning::targetHeight},
    }};

    bool operator==(const SizeConditioning&) const = default;
};

}  // namespace easel
