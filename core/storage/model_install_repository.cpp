#include "storage/model_install_repository.h"

namespace easel::storage {
namespace {

constexpr const char* kInstallColumns = "model_id, source, owner_id, version, removed, updated_at";

ModelInstallRow readInstall(Statement& s) {
    return {s.text(0), s.text(1), s.int64(2), s.int64(3), s.int64(4) != 0, s.int64(5)};
}

}  // namespace

std::int64_t ModelInstallRepository::request(const std::string& modelId, const std::string& source,
                                             std::int64_t ownerId, std::int64_t now) const {
    std::int64_t version = 0;
    m_db.transaction([&] {
        m_db.statement(
                "INSERT INTO model_installs (model_id, source, owner_id, version, removed, updated_at) "
                "VALUES (?, ?, ?, 1, 0, ?) ON CONFLICT (model_id) DO UPDATE SET source = excluded.source, "
                "owner_id = excluded.owner_id, version = model_installs.version + 1, removed = 0, "
                "updated_at = excluded.updated_at")
            .bindAll(modelId, source, ownerId, now)
            .run();
        auto s = m_db.statement("SELECT version FROM model_installs WHERE model_id = ?");
        s.bindAll(modelId);
        if (s.step()) version = s.int64(0);
    });
    return version;
}

bool ModelInstallRepository::markRemoved(const std::string& modelId, std::int64_t now) const {
    const auto l = m_db.lock();
    return m_db.statement("UPDATE model_installs SET removed = 1, updated_at = ? WHERE model_id = ? AND removed = 0")
               .bindAll(now, modelId)
               .run() == 1;
}

bool ModelInstallRepository::markRemoved(const std::string& modelId, std::int64_t version, std::int64_t now) const {
    const auto l = m_db.lock();
    return m_db.statement(
                   "UPDATE model_installs SET removed = 1, updated_at = ? WHERE model_id = ? AND version = ? AND "
                   "removed = 0")
               .bindAll(now, modelId, version)
               .run() == 1;
}

int ModelInstallRepository::markRemovedOf(std::int64_t ownerId, std::int64_t now) const {
    const auto l = m_db.lock();
    return m_db.statement("UPDATE model_installs SET removed = 1, updated_at = ? WHERE owner_id = ? AND removed = 0")
        .bindAll(now, ownerId)
        .run();
}

std::optional<ModelInstallRow> ModelInstallRepository::find(const std::string& modelId) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kInstallColumns + " FROM model_installs WHERE model_id = ?");
    s.bindAll(modelId);
    if (!s.step()) return std::nullopt;
    return readInstall(s);
}

std::vector<ModelInstallRow> ModelInstallRepository::all() const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kInstallColumns + " FROM model_installs ORDER BY model_id");
    std::vector<ModelInstallRow> out;
    while (s.step()) out.push_back(readInstall(s));
    return out;
}

std::vector<ModelInstallRow> ModelInstallRepository::loadsOf(std::int64_t ownerId) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(std::string("SELECT ") + kInstallColumns +
                            " FROM model_installs WHERE owner_id = ? AND removed = 0 ORDER BY model_id");
    s.bindAll(ownerId);
    std::vector<ModelInstallRow> out;
    while (s.step()) out.push_back(readInstall(s));
    return out;
}

void ModelInstallRepository::report(const ModelInstallStateRow& r) const {
    const auto l = m_db.lock();
    m_db.statement(
            "INSERT INTO model_install_states (model_id, worker_id, version, state, bytes_done, bytes_total, "
            "message, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_id, worker_id) DO UPDATE SET "
            "version = excluded.version, state = excluded.state, bytes_done = excluded.bytes_done, "
            "bytes_total = excluded.bytes_total, message = excluded.message, updated_at = excluded.updated_at")
        .bindAll(r.modelId, r.workerId, r.version, r.state, r.bytesDone, r.bytesTotal, r.message, r.updatedAt)
        .run();
}

std::vector<ModelInstallStateRow> ModelInstallRepository::statesOf(const std::string& modelId,
                                                                   std::int64_t version) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "SELECT model_id, worker_id, version, state, bytes_done, bytes_total, message, updated_at "
        "FROM model_install_states WHERE model_id = ? AND version = ? ORDER BY worker_id");
    s.bindAll(modelId, version);
    std::vector<ModelInstallStateRow> out;
    while (s.step()) {
        out.push_back({s.text(0), s.text(1), s.int64(2), s.text(3), s.int64(4), s.int64(5), s.text(6), s.int64(7)});
    }
    return out;
}

}  // namespace easel::storage
