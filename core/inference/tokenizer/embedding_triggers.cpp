#include "inference/tokenizer/embedding_triggers.h"

#include <algorithm>
#include <stdexcept>

namespace easel::inference {

int EmbeddingTriggers::add(const CLIPTokenizer& tokenizer, const std::string& name, int vectors) {
    if (vectors < 1) {
        throw std::invalid_argument("embedding '" + name + "' has no vectors");
    }
    std::vector<int> ids = tokenizer.encode(name);
    if (ids.empty()) {
        throw std::invalid_argument("the trigger word '" + name + "' has no tokens (empty or only spaces)");
    }
    for (const auto& other : m_triggers) {
        if (other.name == name) throw std::invalid_argument("two embeddings use the trigger word '" + name + "'");
        if (other.ids == ids) {
            throw std::invalid_argument("the trigger words '" + other.name + "' and '" + name +
                                        "' are the same tokens, so a prompt could not tell them apart");
        }
    }
    const int index = static_cast<int>(m_triggers.size());
    auto& candidates = m_byFirstId[ids.front()];
    m_triggers.push_back({name, std::move(ids), vectors});
    candidates.push_back(index);
    std::stable_sort(candidates.begin(), candidates.end(), [this](int a, int b) {
        return m_triggers[static_cast<std::size_t>(a)].ids.size() > m_triggers[static_cast<std::size_t>(b)].ids.size();
    });
    return index;
}

std::optional<EmbeddingTriggers::Match> EmbeddingTriggers::matchAt(std::span<const int> tokens,
                                                                   std::size_t position) const {
    if (position >= tokens.size()) return std::nullopt;
    const auto it = m_byFirstId.find(tokens[position]);
    if (it == m_byFirstId.end()) return std::nullopt;
    const auto rest = tokens.subspan(position);
    for (const int index : it->second) {
        const auto& ids = m_triggers[static_cast<std::size_t>(index)].ids;
        if (ids.size() <= rest.size() && std::equal(ids.begin(), ids.end(), rest.begin())) {
            return Match{index, static_cast<int>(ids.size())};
        }
    }
    return std::nullopt;
}

}  // namespace easel::inference
