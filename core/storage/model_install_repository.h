#pragma once
// Models loaded through the API when several servers share the database: the server that takes a
// load_model (or an account's own LoRA) records it here, every generating server installs it into its
// own models dir and reports how far it got, and a delete is recorded the same way. An API-only
// server answers verify_model from those reports.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/database.h"

namespace easel::storage {

struct ModelInstallRow {
    std::string modelId;
    std::string source;  // JSON, as the installer wrote it
    std::int64_t ownerId = 0;
    std::int64_t version = 0;
    bool removed = false;
    std::int64_t updatedAt = 0;
};

struct ModelInstallStateRow {
    std::string modelId;
    std::string workerId;
    std::int64_t version = 0;
    std::string state;
    std::int64_t bytesDone = 0;
    std::int64_t bytesTotal = 0;
    std::string message;
    std::int64_t updatedAt = 0;
};

class ModelInstallRepository {
public:
    explicit ModelInstallRepository(const Database& db) : m_db(db) {}

    // A load of `modelId` (again): returns its new version, which every server installs.
    std::int64_t request(const std::string& modelId, const std::string& source, std::int64_t ownerId,
                         std::int64_t now) const;
    // A delete: every server removes its copy. False when no such load is recorded.
    bool markRemoved(const std::string& modelId, std::int64_t now) const;
    // The same, only while `version` is the recorded one (a later load is left alone).
    bool markRemoved(const std::string& modelId, std::int64_t version, std::int64_t now) const;
    // An account's purge: each of its own loads is removed.
    int markRemovedOf(std::int64_t ownerId, std::int64_t now) const;
    std::optional<ModelInstallRow> find(const std::string& modelId) const;
    std::vector<ModelInstallRow> all() const;
    // An account's own loads that are not removed.
    std::vector<ModelInstallRow> loadsOf(std::int64_t ownerId) const;

    // One server's state of one install (its latest report replaces the previous one).
    void report(const ModelInstallStateRow& state) const;
    // Every server's latest report on `modelId`'s install `version`.
    std::vector<ModelInstallStateRow> statesOf(const std::string& modelId, std::int64_t version) const;

private:
    const Database& m_db;
};

}  // namespace easel::storage
