#include "inference/loading/checkpoint_loader.h"

#include "inference/loading/diffusers_loader.h"
#include "inference/tensor_utils.h"

namespace easel::inference {

void loadModuleWeights(torch::nn::Module& module, const SafetensorsFile& file, const std::string& prefix) {
    torch::NoGradGuard noGrad;
    std::vector<std::string> missing;
    auto copyOne = [&](const std::string& name, torch::Tensor& target) {
        const std::string key = prefix + name;
        const auto* view = file.find(key);
        if (view == nullptr) {
            missing.push_back(key);
            return;
        }
        if (view->shape != target.sizes().vec()) {
            throw ModelLoadError("tensor '" + key + "' in '" + file.path().string() + "' has shape " +
                                 shapeString(view->shape) + ", the model expects " + shapeString(target.sizes()));
        }
        auto source = toTensor(*view);
        if (source.is_floating_point() && !torch::isfinite(source).all().item<bool>()) {
            throw ModelLoadError("tensor '" + key + "' in '" + file.path().string() +
                                 "' contains NaN or infinite values");
        }
        target.copy_(source.to(target.scalar_type()));
        file.releasePages(*view);
    };
    for (auto& item : module.named_parameters(true)) copyOne(item.key(), item.value());
    for (auto& item : module.named_buffers(true)) copyOne(item.key(), item.value());
    if (!missing.empty()) {
        std::string list;
        for (std::size_t i = 0; i < std::min<std::size_t>(missing.size(), 8); ++i)
            list += (i ? ", '" : "'") + missing[i] + "'";
        if (missing.size() > 8) list += ", … (" + std::to_string(missing.size()) + " in all)";
        throw ModelLoadError("'" + file.path().string() + "' is missing " + std::to_string(missing.size()) +
                             " tensor(s): " + list);
    }
}

std::shared_ptr<TextEncoder> makeTextEncoder(const TextEncoderConfig& config,
                                             std::shared_ptr<torch::nn::Module>& module) {
    if (config.kind == TextEncoderKind::OpenCLIP) {
        auto m = std::make_shared<OpenCLIPTextModelImpl>(config);
        module = m;
        return m;
    }
    auto m = std::make_shared<CLIPTextModelImpl>(config);
    module = m;
    return m;
}

StableDiffusionModel buildRandomModel(DetectedModel detected, torch::Dtype dtype) {
    StableDiffusionModel model;
    model.detected = std::move(detected);
    {
        // Built directly in the compute dtype: building in float32 and converting would hold both.
        DefaultDtypeGuard dtypeGuard(dtype);
        model.unet = UNet2DConditionModel(model.detected.unet);
        model.vae = AutoencoderKL(model.detected.vae);
        model.textEncoder = makeTextEncoder(model.detected.text, model.textModule);
        if (model.detected.text2) model.textEncoder2 = makeTextEncoder(*model.detected.text2, model.textModule2);
    }
    model.unet->eval();
    model.vae->eval();
    model.textModule->eval();
    if (model.textModule2) model.textModule2->eval();
    return model;
}

namespace {

// Builds the networks `detected` describes and fills them from `file`.
StableDiffusionModel buildModel(const SafetensorsFile& file, DetectedModel detected, torch::Dtype dtype) {
    StableDiffusionModel model;
    try {
        model = buildRandomModel(std::move(detected), dtype);
    } catch (const c10::Error& e) {
        // Shapes that detection accepted but no network can be built from (e.g. odd channel counts).
        throw ModelLoadError("'" + file.path().string() +
                             "' describes a network Easel cannot build: " + e.what_without_backtrace());
    }
    loadModuleWeights(*model.unet, file, model.detected.unetPrefix);
    loadModuleWeights(*model.vae, file, model.detected.vaePrefix);
    loadModuleWeights(*model.textModule, file, model.detected.textPrefix);
    if (model.textModule2) loadModuleWeights(*model.textModule2, file, model.detected.text2Prefix);
    return model;
}

}  // namespace

StableDiffusionModel loadSingleFileCheckpoint(const std::filesystem::path& path, const ModelOverrides& overrides,
                                              torch::Dtype dtype) {
    const auto ext = path.extension().string();
    if (ext == ".ckpt" || ext == ".pt" || ext == ".pth" || ext == ".bin") {
        throw ModelLoadError("'" + path.string() +
                             "' is a pickled checkpoint, which can run arbitrary code when loaded; Easel only loads "
                             ".safetensors (convert it with a trusted tool first)");
    }
    const auto file = SafetensorsFile::open(path);
    return buildModel(file, detectSingleFile(file, overrides), dtype);
}

StableDiffusionModel loadDiffusersFolder(const std::filesystem::path& path, torch::Dtype dtype) {
    const auto folder = openDiffusersFolder(path);
    try {
        auto detected = detectSingleFile(folder.weights, folder.overrides);
        if (detected.family != ModelFamily::SDXL && (folder.sd2TextEncoder || detected.unet.linearProjection))
            detected.family = ModelFamily::SD2;
        return buildModel(folder.weights, std::move(detected), dtype);
    } catch (const ModelLoadError& e) {
        throw ModelLoadError(folder.translateMessage(e.what()));
    }
}

}  // namespace easel::inference
