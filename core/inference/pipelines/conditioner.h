#pragma once
// Prompt -> text-encoder hidden states, the conditioning every pipeline starts from: tokenizing (the
// CLIP BPE with A1111 weighting and 75-token chunks, or a model's own word tokenizer), encoding
// each chunk, applying the emphasis, and giving the prompt and the negative prompt the same number
// of chunks (the shorter is padded with empty ones) so that they batch for guidance. Textual-inversion
// embeddings given to the constructor replace their trigger words in both prompts (see
// inference/adapters/embedding.h for the calling pattern).

#include <torch/torch.h>

#include <string>
#include <vector>

#include "inference/adapters/embedding.h"
#include "inference/loading/checkpoint_loader.h"
#include "inference/tokenizer/clip_tokenizer.h"
#include "inference/tokenizer/embedding_triggers.h"
#include "inference/tokenizer/prompt_parser.h"
#include "inference/tokenizer/word_tokenizer.h"

namespace easel::inference {

struct Conditioning {
    torch::Tensor cond;    // [1, 77 * chunks, D] float32
    torch::Tensor uncond;  // the negative prompt's, same shape
    // SDXL: encoder 2's projected pooled output of each prompt's first chunk [1, P] (the start of the
    // `vector`); undefined for SD 1.x/2.x. An empty negative prompt gives zeros for uncond and
    // uncondPooled, as SDXL base samples (sgm force_uc_zero_embeddings, diffusers
    // force_zeros_for_empty_prompt).
    torch::Tensor condPooled;
    torch::Tensor uncondPooled;
};

class Conditioner {
public:
    // Exactly one of `clip` and `word` is set (the model's tokenizer); both must outlive the conditioner.
    // `embeddings` are the request's active textual inversions (trigger word -> vectors). Throws
    // EmbeddingError when one does not fit the text encoder (checkEmbeddingFits), when two share a trigger
    // word, or when the model has no CLIP tokenizer to find trigger words with.
    Conditioner(StableDiffusionModel& model, const CLIPTokenizer* clip, const WordTokenizer* word, torch::Device device,
                const std::vector<TextualInversion>& embeddings = {});

    // Throws GenerationError when the prompt needs more than `maxChunks` chunks or holds a token
    // outside the encoder's vocabulary.
    Conditioning encode(const std::string& prompt, const std::string& negativePrompt, int clipSkip,
                        int maxChunks) const;

private:
    // Text -> one or more 77-token chunks with per-token weights.
    struct Tokenized {
        std::vector<std::vector<int>> chunks;
        std::vector<std::vector<float>> weights;
        std::vector<std::vector<EmbeddingSlot>> embeddings;  // per chunk; empty lists without embeddings
    };
    struct Encoded {
        torch::Tensor hidden;
        torch::Tensor pooled;  // SDXL only
    };
    Tokenized tokenize(const std::string& text) const;
    Encoded encodeChunks(const Tokenized& t, int chunks, int clipSkip) const;
    TokenEmbeddingOverride overrideFor(const std::vector<EmbeddingSlot>& slots,
                                       const std::vector<torch::Tensor>& vectors) const;

    StableDiffusionModel& m_model;
    const CLIPTokenizer* m_clip;
    const WordTokenizer* m_word;
    torch::Device m_device;
    EmbeddingTriggers m_triggers;
    std::vector<torch::Tensor> m_vectors;   // per trigger index: [n, D] on m_device
    std::vector<torch::Tensor> m_vectors2;  // SDXL: the clip_g vectors for encoder 2, [n, D2]
};

}  // namespace easel::inference
