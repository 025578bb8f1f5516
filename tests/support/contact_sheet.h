#pragma once
// Images side by side, written to $EASEL_ARTIFACT_DIR (if set) for a person to look at.

#include <cstdlib>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "inference/image/image.h"

namespace easel::testing {

class ContactSheet {
public:
    void add(const inference::Image& image) {
        const cv::Mat m(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.rgb.data()));
        cv::Mat big;
        cv::resize(m, big, {128, 128}, 0, 0, cv::INTER_NEAREST);
        m_tiles.push_back(big);
    }
    void save(const std::string& name, int columns) const {
        const char* dir = std::getenv("EASEL_ARTIFACT_DIR");
        if (dir == nullptr || m_tiles.empty()) return;
        const int rows = (static_cast<int>(m_tiles.size()) + columns - 1) / columns;
        cv::Mat sheet(rows * 128, columns * 128, CV_8UC3, cv::Scalar(0, 0, 0));
        for (std::size_t i = 0; i < m_tiles.size(); ++i) {
            const int k = static_cast<int>(i);
            m_tiles[i].copyTo(sheet(cv::Rect((k % columns) * 128, (k / columns) * 128, 128, 128)));
        }
        cv::cvtColor(sheet, sheet, cv::COLOR_RGB2BGR);
        cv::imwrite(std::string(dir) + "/" + name, sheet);
    }

private:
    std::vector<cv::Mat> m_tiles;
};

}  // namespace easel::testing
