#include "inference/pipelines/conditioner.h"

#include <algorithm>
#include <optional>

#include "inference/engine.h"
#include "inference/tokenizer/prompt_parser.h"

namespace easel::inference {

Conditioning Conditioner::encode(const std::string& prompt, const std::string& negativePrompt, int clipSkip,
                                 int maxChunks) const {
    const auto cond = tokenize(prompt);
    const auto uncond = tokenize(negativePrompt);
    const int chunks = static_cast<int>(std::max(cond.chunks.size(), uncond.chunks.size()));
    if (chunks > maxChunks) {
        throw GenerationError("the prompt is too long: at most " + std::to_string(maxChunks * kPromptChunkTokens) +
                              " tokens");
    }
    return {encodeChunks(cond, chunks, clipSkip), encodeChunks(uncond, chunks, clipSkip)};
}

Conditioner::Tokenized Conditioner::tokenize(const std::string& text) const {
    Tokenized t;
    if (m_word != nullptr) {
        t.chunks.push_back(m_word->encodePadded(text, m_model.detected.text.maxPositions));
        t.weights.emplace_back(t.chunks.back().size(), 1.0f);
        return t;
    }
    // SD 2.x (OpenCLIP, also as a diffusers CLIPTextModel) pads with 0, SD 1.x with EOS.
    const int pad = m_model.detected.family == ModelFamily::SD2 ? 0 : m_clip->eosId();
    auto w = tokenizeWeighted(*m_clip, text, pad);
    t.chunks = std::move(w.chunks);
    t.weights = std::move(w.weights);
    return t;
}

// Encodes each chunk, applies the A1111 emphasis (scale the hidden states by the weights, then
// restore the original mean) and concatenates the chunks along the token axis.
torch::Tensor Conditioner::encodeChunks(const Tokenized& t, int chunks, int clipSkip) const {
    std::vector<torch::Tensor> parts;
    std::optional<Tokenized> empty;  // padding chunks, only when the other prompt is longer
    for (int c = 0; c < chunks; ++c) {
        const bool real = c < static_cast<int>(t.chunks.size());
        if (!real && !empty) empty = tokenize("");
        const auto& ids = real ? t.chunks[static_cast<std::size_t>(c)] : empty->chunks[0];
        const auto& weights = real ? t.weights[static_cast<std::size_t>(c)] : empty->weights[0];
        for (int id : ids) {
            if (id < 0 || id >= m_model.detected.text.vocabSize) {
                throw GenerationError("the prompt's token " + std::to_string(id) +
                                      " is outside the text encoder's vocabulary of " +
                                      std::to_string(m_model.detected.text.vocabSize));
            }
        }
        auto idTensor =
            torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0).to(m_device);
        auto z = m_model.textEncoder->encode(idTensor, clipSkip).hidden.to(torch::kFloat32);
        const bool weighted = std::any_of(weights.begin(), weights.end(), [](float w) { return w != 1.0f; });
        if (weighted) {
            const auto originalMean = z.mean();
            z = z * torch::tensor(weights).to(m_device).view({1, -1, 1});
            z = z * (originalMean / z.mean());
        }
        parts.push_back(z);
    }
    return torch::cat(parts, 1);
}

}  // namespace easel::inference
