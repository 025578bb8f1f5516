#include "inference/pipelines/conditioner.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "inference/engine.h"
#include "inference/pipelines/sdxl_conditioning.h"
#include "inference/tokenizer/prompt_parser.h"

namespace easel::inference {

Conditioner::Conditioner(StableDiffusionModel& model, const CLIPTokenizer* clip, const WordTokenizer* word,
                         torch::Device device, const std::vector<TextualInversion>& embeddings)
    : m_model(model), m_clip(clip), m_word(word), m_device(device) {
    if (embeddings.empty()) return;
    if (m_clip == nullptr) {
        throw EmbeddingError(
            "textual-inversion embeddings need a CLIP tokenizer to find their trigger words; "
            "this model has its own word tokenizer");
    }
    for (const auto& e : embeddings) {
        const auto& text2 = m_model.detected.text2;
        checkEmbeddingFits(e, m_model.detected.text, text2 ? &*text2 : nullptr);
        try {
            m_triggers.add(*m_clip, e.name, e.numVectors());
        } catch (const std::invalid_argument& error) {
            throw EmbeddingError(error.what());
        }
        m_vectors.push_back(e.vectors.to(m_device, torch::kFloat32));
        if (text2) m_vectors2.push_back(e.clipG.to(m_device, torch::kFloat32));
    }
}

Conditioning Conditioner::encode(const std::string& prompt, const std::string& negativePrompt, int clipSkip,
                                 int maxChunks) const {
    const auto cond = tokenize(prompt);
    const auto uncond = tokenize(negativePrompt);
    const int chunks = static_cast<int>(std::max(cond.chunks.size(), uncond.chunks.size()));
    if (chunks > maxChunks) {
        throw GenerationError("the prompt is too long: at most " + std::to_string(maxChunks * kPromptChunkTokens) +
                              " tokens");
    }
    auto c = encodeChunks(cond, chunks, clipSkip);
    if (m_model.detected.family == ModelFamily::SDXL && negativePrompt.empty()) {
        return {c.hidden, torch::zeros_like(c.hidden), c.pooled, torch::zeros_like(c.pooled)};
    }
    auto u = encodeChunks(uncond, chunks, clipSkip);
    return {c.hidden, u.hidden, c.pooled, u.pooled};
}

Conditioner::Tokenized Conditioner::tokenize(const std::string& text) const {
    Tokenized t;
    if (m_word != nullptr) {
        t.chunks.push_back(m_word->encodePadded(text, m_model.detected.text.maxPositions));
        t.weights.emplace_back(t.chunks.back().size(), 1.0f);
        t.embeddings.emplace_back();
        return t;
    }
    // SD 2.x (OpenCLIP, also as a diffusers CLIPTextModel) pads with 0, SD 1.x with EOS. SDXL's first
    // encoder pads with EOS; its second gets openClipPadding of the same ids.
    const int pad = m_model.detected.family == ModelFamily::SD2 ? 0 : m_clip->eosId();
    auto w = tokenizeWeighted(*m_clip, text, pad, m_triggers.empty() ? nullptr : &m_triggers);
    t.chunks = std::move(w.chunks);
    t.weights = std::move(w.weights);
    t.embeddings = std::move(w.embeddings);
    return t;
}

// Encodes each chunk, applies the A1111 emphasis (scale the hidden states by the weights, then
// restore the original mean) and concatenates the chunks along the token axis.
Conditioner::Encoded Conditioner::encodeChunks(const Tokenized& t, int chunks, int clipSkip) const {
    const bool sdxl = m_model.detected.family == ModelFamily::SDXL;
    const int vocab = sdxl && m_model.detected.text2
                          ? std::min(m_model.detected.text.vocabSize, m_model.detected.text2->vocabSize)
                          : m_model.detected.text.vocabSize;
    torch::Tensor pooled;
    std::vector<torch::Tensor> parts;
    std::optional<Tokenized> empty;  // padding chunks, only when the other prompt is longer
    for (int c = 0; c < chunks; ++c) {
        const bool real = c < static_cast<int>(t.chunks.size());
        if (!real && !empty) empty = tokenize("");
        const auto& ids = real ? t.chunks[static_cast<std::size_t>(c)] : empty->chunks[0];
        const auto& weights = real ? t.weights[static_cast<std::size_t>(c)] : empty->weights[0];
        const auto& slots = real ? t.embeddings[static_cast<std::size_t>(c)] : empty->embeddings[0];
        for (int id : ids) {
            if (id < 0 || id >= vocab) {
                throw GenerationError("the prompt's token " + std::to_string(id) +
                                      " is outside the text encoder's vocabulary of " + std::to_string(vocab));
            }
        }
        auto idTensor =
            torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0).to(m_device);
        torch::Tensor z;
        if (sdxl) {
            // Encoder 2 sees open_clip's padding (0) where the CLIP tokenizer put EOS; a model's own
            // word tokenizer pads both alike.
            const auto ids2 = m_clip != nullptr ? openClipPadding(idTensor, m_clip->eosId()) : idTensor;
            auto both = encodeSDXLText(m_model, idTensor, ids2, clipSkip, overrideFor(slots, m_vectors),
                                       overrideFor(slots, m_vectors2));
            z = both.context.to(torch::kFloat32);
            // The pooled output of the first chunk only, as A1111 does for long prompts.
            if (!pooled.defined()) pooled = both.pooled.to(torch::kFloat32);
        } else {
            z = m_model.textEncoder->encodeWithOverride(idTensor, clipSkip, overrideFor(slots, m_vectors))
                    .hidden.to(torch::kFloat32);
        }
        const bool weighted = std::any_of(weights.begin(), weights.end(), [](float w) { return w != 1.0f; });
        if (weighted) {
            const auto originalMean = z.mean();
            z = z * torch::tensor(weights).to(m_device).view({1, -1, 1});
            z = z * (originalMean / z.mean());
        }
        parts.push_back(z);
    }
    return {torch::cat(parts, 1), pooled};
}

// The embedding vectors of one chunk's slots, gathered in position order from `vectors` (one encoder's).
TokenEmbeddingOverride Conditioner::overrideFor(const std::vector<EmbeddingSlot>& slots,
                                                const std::vector<torch::Tensor>& vectors) const {
    if (slots.empty()) return {};
    std::vector<std::int64_t> positions;
    std::vector<torch::Tensor> rows;
    positions.reserve(slots.size());
    rows.reserve(slots.size());
    for (const auto& slot : slots) {
        positions.push_back(slot.position);
        rows.push_back(vectors[static_cast<std::size_t>(slot.trigger)][slot.vector]);
    }
    return {torch::tensor(positions, torch::kLong).to(m_device), torch::stack(rows)};
}

}  // namespace easel::inference
