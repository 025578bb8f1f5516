#pragma once
// The workers table: each generating server says, at every heartbeat, which models it has loaded. An
// API-only server (easel-server --role api) loads no model; it reads this to list models and to
// validate requests, and sees which workers are alive.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/database.h"

namespace easel::storage {

struct WorkerRow {
    std::string workerId;
    std::int64_t seenAt = 0;
    std::string models;  // JSON, as the worker wrote it
    // Its recent seconds per image (for the ETAs of servers that do not generate); nullopt until it
    // has generated one.
    std::optional<double> secondsPerImage;
};

class WorkerRepository {
public:
    explicit WorkerRepository(const Database& db) : m_db(db) {}
    // Inserts or refreshes this worker's row.
    void advertise(const std::string& workerId, std::int64_t now, const std::string& models,
                   std::optional<double> secondsPerImage = std::nullopt) const;
    // A worker that stops cleanly removes its row; a dead one's row just ages.
    void retire(const std::string& workerId) const;
    // Workers seen at `since` or later, the most recently seen first.
    std::vector<WorkerRow> seenSince(std::int64_t since) const;

private:
    const Database& m_db;
};

}  // namespace easel::storage
