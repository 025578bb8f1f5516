#pragma once
// Textual-inversion trigger words, found in a prompt's tokens the way the AUTOMATIC1111 web UI finds them
// (modules/textual_inversion EmbeddingDatabase.find_embedding_at_position): a trigger is the BPE id
// sequence of its name, and it matches wherever exactly that sequence occurs in a fragment's tokens, the
// longest trigger winning when several start at the same token. Torch-free: only names, ids and vector
// counts live here; the vectors themselves are inference/adapters/embedding.h's.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "inference/tokenizer/clip_tokenizer.h"

namespace easel::inference {

struct EmbeddingTrigger {
    std::string name;      // the trigger word as the user writes it (A1111: the file stem)
    std::vector<int> ids;  // its BPE ids, without BOS/EOS
    int vectors = 0;       // prompt positions the embedding occupies
};

class EmbeddingTriggers {
public:
    struct Match {
        int trigger = 0;  // index into triggers()
        int length = 0;   // BPE tokens of the prompt it replaces
    };

    // Adds `name` (tokenized with `tokenizer`) taking `vectors` positions; returns its index. Throws
    // std::invalid_argument when the name has no tokens, `vectors` < 1, or another trigger already has
    // the same name or the same ids (the prompt could not say which one is meant).
    int add(const CLIPTokenizer& tokenizer, const std::string& name, int vectors);

    const std::vector<EmbeddingTrigger>& triggers() const { return m_triggers; }
    bool empty() const { return m_triggers.empty(); }

    // The trigger whose ids start at tokens[position], longest first; nullopt when none does.
    std::optional<Match> matchAt(std::span<const int> tokens, std::size_t position) const;

private:
    std::vector<EmbeddingTrigger> m_triggers;
    // First BPE id -> indices of the triggers starting with it, longest ids first.
    std::unordered_map<int, std::vector<int>> m_byFirstId;
};

}  // namespace easel::inference
