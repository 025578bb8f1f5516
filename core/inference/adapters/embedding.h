#pragma once
// Textual-inversion embeddings: a few learned token-embedding vectors that a trigger word in the prompt
// stands for. Read from .safetensors in the layouts users have:
//   - kohya-ss sd-scripts (train_textual_inversion.py): one tensor "emb_params" [n, dim];
//   - AUTOMATIC1111's "string_to_param" dict saved as safetensors: one tensor "string_to_param.*" (other
//     "string_to_token.*"-style bookkeeping tensors are ignored);
//   - diffusers learned_embeds: one tensor named after its token, [dim] or [n, dim];
//   - SDXL: the pair "clip_l" [n, 768] and "clip_g" [n, 1280], one set of vectors per text encoder.
// As A1111 does, the trigger word is the file stem unless the caller names one. Pickled .pt/.bin files are
// refused: unpickling runs code from the file. Include only from inference .cpp files and tests (libtorch).
//
// How a caller uses them (the engine, once a request names embeddings):
//   std::vector<TextualInversion> active{loadTextualInversion(dir / "tinyastro.safetensors")};
//   const Conditioner conditioner(model, clipTokenizer, wordTokenizer, device, active);
//   auto c = conditioner.encode(prompt, negativePrompt, clipSkip, maxChunks);
// The conditioner checks each embedding against the text encoder (checkEmbeddingFits) and throws
// EmbeddingError for one that does not fit; the trigger words then work in the prompt and the negative
// prompt, inside emphasis brackets, across chunks, with any clip skip.

#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "inference/engine.h"
#include "inference/models/model_configs.h"

namespace easel::inference {

// An embedding file that cannot be used: unreadable, pickled, of an unknown layout, or not made for the
// loaded text encoder. A GenerationError, since it comes from what a request asked for; the message names
// the file or the trigger word.
class EmbeddingError : public GenerationError {
public:
    using GenerationError::GenerationError;
};

enum class EmbeddingFormat {
    EmbParams,      // kohya "emb_params"
    StringToParam,  // A1111 "string_to_param.*"
    Diffusers,      // one tensor named after its token
    SDXL,           // "clip_l" + "clip_g"
};

// "emb_params", "string_to_param", "diffusers", "sdxl".
std::string embeddingFormatName(EmbeddingFormat format);

struct TextualInversion {
    std::string name;  // the trigger word
    EmbeddingFormat format = EmbeddingFormat::EmbParams;
    std::string tensorKey;  // the tensor the vectors came from ("clip_l" for SDXL)
    torch::Tensor vectors;  // [n, dim] float32 on the CPU; for SDXL the clip_l vectors
    torch::Tensor clipG;    // SDXL only: [n, 1280] float32

    int numVectors() const { return static_cast<int>(vectors.size(0)); }
    int dim() const { return static_cast<int>(vectors.size(1)); }
    bool isSDXL() const { return format == EmbeddingFormat::SDXL; }
};

// Reads one embedding; `trigger` empty means the file stem. Throws EmbeddingError for a missing or
// pickled file, a layout it does not know, several candidate tensors, a shape that is not [dim] or
// [n, dim], a non-float dtype, or non-finite values.
TextualInversion loadTextualInversion(const std::filesystem::path& path, const std::string& trigger = {});

// Throws EmbeddingError unless `embedding` can stand in for tokens of this model's text encoder(s):
// `text2` is SDXL's second encoder (null for SD 1.x/2.x). An SDXL embedding (clip_l + clip_g) fits only
// an SDXL model and a single set only SD 1.x/2.x; each vector width must equal its encoder's hidden
// size (both are named in the message).
void checkEmbeddingFits(const TextualInversion& embedding, const TextEncoderConfig& text,
                        const TextEncoderConfig* text2 = nullptr);

}  // namespace easel::inference
