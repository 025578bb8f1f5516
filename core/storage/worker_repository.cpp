#include "storage/worker_repository.h"

namespace easel::storage {

void WorkerRepository::advertise(const std::string& workerId, std::int64_t now, const std::string& models,
                                 std::optional<double> secondsPerImage) const {
    const auto l = m_db.lock();
    m_db.statement(
            "INSERT INTO workers (worker_id, seen_at, models, seconds_per_image) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (worker_id) DO UPDATE SET seen_at = excluded.seen_at, models = excluded.models, "
            "seconds_per_image = excluded.seconds_per_image")
        .bindAll(workerId, now, models, secondsPerImage)
        .run();
}

void WorkerRepository::retire(const std::string& workerId) const {
    const auto l = m_db.lock();
    m_db.statement("DELETE FROM workers WHERE worker_id = ?").bindAll(workerId).run();
}

std::vector<WorkerRow> WorkerRepository::seenSince(std::int64_t since) const {
    const auto l = m_db.lock();
    auto s = m_db.statement(
        "SELECT worker_id, seen_at, models, seconds_per_image FROM workers WHERE seen_at >= ? "
        "ORDER BY seen_at DESC, worker_id");
    s.bindAll(since);
    std::vector<WorkerRow> out;
    while (s.step()) {
        out.push_back(
            {s.text(0), s.int64(1), s.text(2), s.isNull(3) ? std::nullopt : std::optional<double>(s.real(3))});
    }
    return out;
}

}  // namespace easel::storage
