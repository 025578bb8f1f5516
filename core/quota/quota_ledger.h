#pragma once
// The image quota, in one place: a job is charged when it is queued, refunded when it ends without
// images (cancelled, failed, given up), and entered in the usage ledger when it delivers. Each of
// these commits in the same transaction as the job's status change that causes it, so a crash can
// leave neither a refunded job that still runs nor an ended job that was never refunded.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "storage/database.h"
#include "storage/user_repository.h"

namespace easel::quota {

class QuotaLedger {
public:
    explicit QuotaLedger(const storage::Database& db) : m_db(db) {}

    // Reserves `images` of the account's quota (no limit when `limit` is empty). False, changing
    // nothing, when that would pass the limit or the account is being deleted. Call it inside the
    // transaction that inserts the job, so a refused insert charges nothing.
    bool charge(std::int64_t userId, std::int64_t images, std::optional<std::int64_t> limit) const;

    // Runs `endJob` (a status change that returns whether it changed anything) and, when it did,
    // gives the job's images back, both in one transaction. Returns what `endJob` returned: of a
    // cancel and a failure racing for one job, only the one that ends it refunds.
    bool endWithRefund(std::int64_t userId, std::int64_t images, const std::function<bool()>& endJob) const;

    // Runs `completeJob` and, when it returns true, enters the delivered images in the usage ledger,
    // both in one transaction (the charge stands). Returns what `completeJob` returned.
    bool completeWithUsage(std::int64_t userId, std::int64_t jobId, const std::string& kind, std::int64_t images,
                           std::int64_t now, const std::function<bool()>& completeJob) const;

    // The usage ledger, newest first; `limit` is clamped to 1..500.
    std::vector<storage::UsageRow> usage(std::int64_t userId, int limit, int offset) const;
    std::int64_t usageCount(std::int64_t userId) const;

private:
    const storage::Database& m_db;
};

}  // namespace easel::quota
