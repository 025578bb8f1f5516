#include "roofline.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "inference/models/autoencoder_kl.h"
#include "inference/models/unet_2d_condition.h"
#include "inference/tensor_utils.h"
#include "op_census.h"

using namespace easel::inference;

namespace easel::bench {

std::string cpuSummary() {
    std::ifstream in("/proc/cpuinfo");
    std::string line, name = "unknown CPU", flags;
    while (std::getline(in, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const auto key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
        if (key == "model name" && name == "unknown CPU") name = line.substr(colon + 2);
        if (key == "flags" && flags.empty()) flags = " " + line.substr(colon + 2) + " ";
    }
    const auto has = [&](const char* f) { return flags.find(std::string(" ") + f + " ") != std::string::npos; };
    const char* path = has("amx_bf16")      ? "amx"
                       : has("avx512_bf16") ? "avx512_bf16"
                       : has("avx512f")     ? "avx512"
                       : has("avx2")        ? "avx2"
                                            : "baseline";
    return name + ", fastest bf16 path: " + path;
}

namespace {

std::string describe(const OpShape& shape) {
    std::string s = shape.op.substr(6) + " ";
    for (std::size_t i = 0; i < shape.tensors.size(); ++i) {
        if (!shape.tensors[i].defined) continue;
        s += i ? "x[" : "[";
        for (std::size_t d = 0; d < shape.tensors[i].sizes.size(); ++d)
            s += (d ? "," : "") + std::to_string(shape.tensors[i].sizes[d]);
        s += "]";
    }
    if (shape.category == OpCategory::Conv && shape.convParams[0] != 1)
        s += " stride " + std::to_string(shape.convParams[0]);
    return s;
}

struct Row {
    OpCategory category;
    double flops = 0, inGraph = 0, alone = 0;
    std::int64_t calls = 0, shapes = 0;
};

// Prints the census of one graph against the replayed rates and returns its floor in seconds.
double report(const char* title, double measured, const OpCensus& census, int top) {
    std::vector<Row> rows;
    std::vector<std::pair<double, std::string>> losses;  // (in graph - alone, shape)
    for (auto category : {OpCategory::Conv, OpCategory::Linear, OpCategory::Attention}) {
        Row row{category};
        for (const auto& [shape, tally] : census.ops) {
            if (shape.category != category) continue;
            // The kernel's time at this shape: the faster of the replay and the graph's own calls.
            const double alone = std::min(replaySeconds(shape, 3) * static_cast<double>(tally.count), tally.seconds);
            row.flops += tally.flopsEach * static_cast<double>(tally.count);
            row.inGraph += tally.seconds;
            row.alone += alone;
            row.calls += tally.count;
            ++row.shapes;
            char text[320];
            std::snprintf(text, sizeof text, "%-9s x%-3lld %-58s in graph %7.3f s, alone %7.3f s (%6.0f GF/s)",
                          categoryName(category), static_cast<long long>(tally.count), describe(shape).c_str(),
                          tally.seconds, alone, tally.flopsEach * static_cast<double>(tally.count) / alone / 1e9);
            losses.emplace_back(tally.seconds - alone, text);
        }
        rows.push_back(row);
    }
    const auto rate = [](const Row& r) { return r.alone > 0 ? r.flops / r.alone : 0.0; };
    // Attention's products have the FLOPs of a GEMM: their floor is the linear layers' measured rate
    // (a blocked kernel runs them as GEMMs); the sliced products' own rate is shown beside it.
    const double linearRate = rate(rows[1]) > 0 ? rate(rows[1]) : rate(rows[2]);
    std::printf("\n%s: %.3f s measured (median), census run %.3f s\n", title, measured, census.totalSeconds);
    std::printf("  %-10s %9s %6s %7s %11s %9s %10s %9s %9s\n", "category", "GFLOP", "calls", "shapes", "in graph s",
                "GF/s", "alone s", "GF/s", "floor s");
    double floor = 0, counted = 0, flops = 0;
    for (const auto& r : rows) {
        const double f = r.category == OpCategory::Attention && linearRate > 0 ? r.flops / linearRate : r.alone;
        floor += f;
        counted += r.inGraph;
        flops += r.flops;
        std::printf("  %-10s %9.1f %6lld %7lld %11.3f %9.0f %10.3f %9.0f %9.3f\n", categoryName(r.category),
                    r.flops / 1e9, static_cast<long long>(r.calls), static_cast<long long>(r.shapes), r.inGraph,
                    r.inGraph > 0 ? r.flops / r.inGraph / 1e9 : 0.0, r.alone, rate(r) / 1e9, f);
    }
    std::printf("  %-10s %9s %6s %7s %11.3f\n", "other ops", "-", "", "", census.totalSeconds - counted);
    // What the rest is: the operators called outside the counted ones, by time.
    std::set<std::string> countedOps;
    for (const auto& [shape, tally] : census.ops) countedOps.insert(shape.op);
    std::vector<std::pair<double, std::string>> others;
    for (const auto& [name, tally] : census.topLevel) {
        if (!countedOps.contains(name) && tally.seconds > 0.001 * census.totalSeconds)
            others.emplace_back(tally.seconds, name.substr(name.rfind(':') + 1) + " x" + std::to_string(tally.count));
    }
    std::sort(others.rbegin(), others.rend());
    std::string line;
    for (std::size_t i = 0; i < others.size() && i < 8; ++i) {
        char item[96];
        std::snprintf(item, sizeof item, "%s%s %.3f s", i ? ", " : "", others[i].second.c_str(), others[i].first);
        line += item;
    }
    if (!line.empty()) std::printf("  %-10s %s\n", "", line.c_str());
    std::printf("  %-10s %9.1f %6s %7s %11.3f %9.0f %10s %9s %9.3f\n", "total", flops / 1e9, "", "",
                census.totalSeconds, flops / census.totalSeconds / 1e9, "", "", floor);
    std::printf("  => %.2fx the floor (%.3f s measured / %.3f s)\n", measured / floor, measured, floor);
    if (top > 0) {
        std::sort(losses.rbegin(), losses.rend());
        std::printf("  shapes that lose the most against their replay:\n");
        for (int i = 0; i < top && i < static_cast<int>(losses.size()); ++i)
            std::printf("    %s\n", losses[static_cast<std::size_t>(i)].second.c_str());
    }
    std::fflush(stdout);
    return floor;
}

}  // namespace

int rooflineBenchmark(const std::vector<std::string>& precisions, int size, int steps, int threads, int top) {
    torch::set_num_threads(threads);
    torch::NoGradGuard noGrad;
    std::printf("roofline, SD 1.5 geometry (random weights, channels-last), %dx%d, %d threads, libtorch %s\n", size,
                size, threads, TORCH_VERSION);
    std::printf("CPU: %s\n", cpuSummary().c_str());
    std::printf(
        "floor = each conv / linear shape of the graph replayed alone (the rate oneDNN reaches here at that "
        "shape), attention's products at the linear rate; norms and elementwise ops count zero\n");
    std::fflush(stdout);
    for (const auto& precision : precisions) {
        const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
        std::optional<UNet2DConditionModel> unet;
        std::optional<AutoencoderKL> vae;
        {
            DefaultDtypeGuard dtypeGuard(dtype);
            unet.emplace(UNetConfig{});
            vae.emplace(VAEConfig{});
        }
        (*unet)->eval();
        (*vae)->eval();
        useChannelsLast(**unet);
        useChannelsLast(**vae);
        const int latent = size / 8;
        const auto x = torch::randn({2, 4, latent, latent}).to(dtype);
        const auto t = torch::full({2}, 500.0f);
        const auto context = torch::randn({2, 77, 768}).to(dtype);
        const auto z = torch::randn({1, 4, latent, latent}).to(dtype);
        const std::function<void()> unetStep = [&] { (void)(*unet)->forward(x, t, context); };
        const std::function<void()> decode = [&] { (void)(*vae)->decode(z); };

        const double unetSeconds = medianSeconds(unetStep, steps);
        const auto unetCensus = takeCensus(unetStep);
        const std::string unetTitle = precision + " UNet step with guidance (batch 2)";
        const double unetFloor = report(unetTitle.c_str(), unetSeconds, unetCensus, top);

        const double vaeSeconds = medianSeconds(decode, steps);
        const auto vaeCensus = takeCensus(decode);
        const std::string vaeTitle = precision + " VAE decode";
        const double vaeFloor = report(vaeTitle.c_str(), vaeSeconds, vaeCensus, top);

        std::printf(
            "\nsummary %s %dx%d: UNet step %.3f s = %.2fx floor %.3f s (target <= 1.5x); VAE decode %.3f s = "
            "%.2fx floor %.3f s (target <= 1.3x); peak RSS %.2f GiB\n",
            precision.c_str(), size, size, unetSeconds, unetSeconds / unetFloor, unetFloor, vaeSeconds,
            vaeSeconds / vaeFloor, vaeFloor, peakRssGiB());
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace easel::bench
