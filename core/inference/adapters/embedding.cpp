#include "inference/adapters/embedding.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <string_view>
#include <vector>

#include "inference/loading/safetensors.h"
#include "inference/tensor_utils.h"

namespace easel::inference {
namespace {

namespace fs = std::filesystem;

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string quoted(const fs::path& path) { return "'" + path.filename().string() + "'"; }

// torch.save writes a zip archive (or, before torch 1.6, a bare pickle starting with the PROTO opcode).
bool looksPickled(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::array<char, 4> head{};
    in.read(head.data(), head.size());
    if (in.gcount() < 2) return false;
    const bool zip = in.gcount() == 4 && std::string_view(head.data(), 4) == std::string_view("PK\x03\x04", 4);
    const bool pickle = static_cast<unsigned char>(head[0]) == 0x80 && head[1] >= 2 && head[1] <= 5;
    return zip || pickle;
}

[[noreturn]] void refusePickle(const fs::path& path) {
    throw EmbeddingError("embedding " + quoted(path) +
                         " is a pickled PyTorch file; pickles are not loaded (they can run code). Convert it to "
                         ".safetensors, e.g. safetensors.torch.save_file({\"emb_params\": vectors}, path)");
}

// [dim] or [n, dim] of a float dtype -> [n, dim] float32, finite.
torch::Tensor vectorsOf(const fs::path& path, const TensorView& view) {
    const auto where = "embedding " + quoted(path) + ", tensor '" + view.name + "'";
    if (view.dtype != DType::F32 && view.dtype != DType::F16 && view.dtype != DType::BF16 && view.dtype != DType::F64) {
        throw EmbeddingError(where + ": dtype " + std::string(dtypeName(view.dtype)) +
                             " is not a float type (F32, F16, BF16 or F64)");
    }
    if (view.shape.empty() || view.shape.size() > 2 || view.numel() == 0) {
        throw EmbeddingError(where + ": expected vectors of shape [dim] or [n, dim], got " + shapeString(view.shape));
    }
    auto t = toTensor(view).to(torch::kFloat32);
    if (t.dim() == 1) t = t.unsqueeze(0);
    if (!torch::isfinite(t).all().item<bool>()) throw EmbeddingError(where + ": holds NaN or infinite values");
    return t.contiguous();
}

std::string tensorList(const SafetensorsFile& file) {
    std::string names;
    std::size_t shown = 0;
    for (const auto& t : file.tensors()) {
        if (shown == 8) {
            names += ", ...";
            break;
        }
        names += (shown++ == 0 ? "'" : ", '") + t.name + "' " + shapeString(t.shape);
    }
    return names.empty() ? "no tensors" : names;
}

}  // namespace

std::string embeddingFormatName(EmbeddingFormat format) {
    switch (format) {
        case EmbeddingFormat::EmbParams:
            return "emb_params";
        case EmbeddingFormat::StringToParam:
            return "string_to_param";
        case EmbeddingFormat::Diffusers:
            return "diffusers";
        case EmbeddingFormat::SDXL:
            return "sdxl";
    }
    return "unknown";
}

TextualInversion loadTextualInversion(const fs::path& path, const std::string& trigger) {
    const std::string extension = lowercase(path.extension().string());
    if (extension == ".pt" || extension == ".pth" || extension == ".bin" || extension == ".ckpt" ||
        extension == ".pkl") {
        refusePickle(path);
    }
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw EmbeddingError("embedding file not found: " + quoted(path));
    if (extension != ".safetensors") {
        throw EmbeddingError("embedding " + quoted(path) + " is not a .safetensors file");
    }
    if (looksPickled(path)) refusePickle(path);

    SafetensorsFile file = [&] {
        try {
            return SafetensorsFile::open(path);
        } catch (const SafetensorsError& e) {
            throw EmbeddingError("embedding " + quoted(path) + " is not a valid safetensors file: " + e.what());
        }
    }();

    TextualInversion ti;
    ti.name = trigger.empty() ? path.stem().string() : trigger;
    if (ti.name.empty()) throw EmbeddingError("embedding " + quoted(path) + " has no trigger word");

    const TensorView* clipL = file.find("clip_l");
    const TensorView* clipG = file.find("clip_g");
    std::vector<const TensorView*> stringToParam;
    for (const auto& t : file.tensors()) {
        if (t.name.starts_with("string_to_param")) stringToParam.push_back(&t);
    }

    if (clipL != nullptr && clipG != nullptr) {
        ti.format = EmbeddingFormat::SDXL;
        ti.tensorKey = "clip_l";
        ti.vectors = vectorsOf(path, *clipL);
        ti.clipG = vectorsOf(path, *clipG);
        if (ti.vectors.size(0) != ti.clipG.size(0)) {
            throw EmbeddingError("embedding " + quoted(path) + ": clip_l has " + std::to_string(ti.vectors.size(0)) +
                                 " vectors but clip_g has " + std::to_string(ti.clipG.size(0)));
        }
    } else if (const TensorView* emb = file.find("emb_params"); emb != nullptr) {
        ti.format = EmbeddingFormat::EmbParams;
        ti.tensorKey = emb->name;
        ti.vectors = vectorsOf(path, *emb);
    } else if (!stringToParam.empty()) {
        if (stringToParam.size() != 1) {
            throw EmbeddingError("embedding " + quoted(path) + " holds " + std::to_string(stringToParam.size()) +
                                 " string_to_param tensors; one embedding per file is supported");
        }
        ti.format = EmbeddingFormat::StringToParam;
        ti.tensorKey = stringToParam.front()->name;
        ti.vectors = vectorsOf(path, *stringToParam.front());
    } else if (file.tensors().size() == 1) {
        ti.format = EmbeddingFormat::Diffusers;
        ti.tensorKey = file.tensors().front().name;
        ti.vectors = vectorsOf(path, file.tensors().front());
    } else {
        throw EmbeddingError("embedding " + quoted(path) +
                             " is not a textual-inversion embedding of a known layout (emb_params, "
                             "string_to_param.*, one tensor, or clip_l + clip_g); it holds " +
                             tensorList(file));
    }
    return ti;
}

void checkEmbeddingFits(const TextualInversion& embedding, const TextEncoderConfig& text,
                        const TextEncoderConfig* text2) {
    if (text2 != nullptr && !embedding.isSDXL()) {
        throw EmbeddingError(
            "embedding '" + embedding.name + "' is an SD 1.x/2.x embedding (one set of vectors of size " +
            std::to_string(embedding.dim()) + "); the loaded model is SDXL, which needs a clip_l and a clip_g set");
    }
    if (text2 == nullptr && embedding.isSDXL()) {
        throw EmbeddingError("embedding '" + embedding.name + "' is an SDXL embedding (clip_l + clip_g); the loaded " +
                             "model is SD 1.x/2.x, which needs a single set of vectors");
    }
    const auto check = [&](const char* what, std::int64_t size, const TextEncoderConfig& config) {
        if (size == config.hiddenSize) return;
        throw EmbeddingError("embedding '" + embedding.name + "' has " + what + "vectors of size " +
                             std::to_string(size) + " but the " + (what[0] ? std::string(what) : std::string()) +
                             "text encoder's hidden size is " + std::to_string(config.hiddenSize) +
                             " (the embedding was made for another model)");
    };
    check("", embedding.dim(), text);
    if (text2 != nullptr) check("clip_g ", embedding.clipG.size(1), *text2);
}

}  // namespace easel::inference
