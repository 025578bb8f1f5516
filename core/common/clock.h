#pragma once
// Time as a collaborator: services take a Clock so that tests can move time (retention, inactivity,
// rate-limit windows) without sleeping.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace easel {

class Clock {
public:
    virtual ~Clock() = default;
    // Seconds since the Unix epoch.
    virtual std::int64_t nowSeconds() const = 0;
};

class SystemClock final : public Clock {
public:
    std::int64_t nowSeconds() const override {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

class FakeClock final : public Clock {
public:
    explicit FakeClock(std::int64_t start = 1'700'000'000) : m_now(start) {}
    std::int64_t nowSeconds() const override { return m_now.load(); }
    void advance(std::int64_t seconds) { m_now += seconds; }
    void set(std::int64_t seconds) { m_now = seconds; }

private:
    std::atomic<std::int64_t> m_now;
};

// "2026-11-26T14:00:00Z"
std::string isoTime(std::int64_t unixSeconds);

}  // namespace easel
