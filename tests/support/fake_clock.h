#pragma once
// A Clock that moves only when the test moves it: rate-limit windows, retention, inactivity and
// webhook retries are tested by advancing it, never by sleeping.

#include <atomic>
#include <cstdint>

#include "common/clock.h"

namespace easel {

class FakeClock final : public Clock {
public:
    explicit FakeClock(std::int64_t start = 1'700'000'000) : m_now(start) {}
    std::int64_t nowSeconds() const override { return m_now.load(); }
    void advance(std::int64_t seconds) { m_now += seconds; }
    void set(std::int64_t seconds) { m_now = seconds; }

private:
    std::atomic<std::int64_t> m_now;
};

}  // namespace easel
