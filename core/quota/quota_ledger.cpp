#include "quota/quota_ledger.h"

#include <algorithm>

namespace easel::quota {

bool QuotaLedger::charge(std::int64_t userId, std::int64_t images, std::optional<std::int64_t> limit) const {
    return storage::UserRepository(m_db).charge(userId, images, limit);
}

bool QuotaLedger::endWithRefund(std::int64_t userId, std::int64_t images, const std::function<bool()>& endJob) const {
    bool ended = false;
    m_db.transaction([&] {
        ended = endJob();
        if (ended) storage::UserRepository(m_db).refund(userId, images);
    });
    return ended;
}

bool QuotaLedger::completeWithUsage(std::int64_t userId, std::int64_t jobId, const std::string& kind,
                                    std::int64_t images, std::int64_t now,
                                    const std::function<bool()>& completeJob) const {
    bool completed = false;
    m_db.transaction([&] {
        completed = completeJob();
        if (completed) storage::UsageRepository{m_db}.add(userId, jobId, kind, images, now);
    });
    return completed;
}

std::vector<storage::UsageRow> QuotaLedger::usage(std::int64_t userId, int limit, int offset) const {
    return storage::UsageRepository{m_db}.list(userId, std::clamp(limit, 1, 500), std::max(0, offset));
}

std::int64_t QuotaLedger::usageCount(std::int64_t userId) const { return storage::UsageRepository{m_db}.count(userId); }

}  // namespace easel::quota
