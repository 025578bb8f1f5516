#pragma once
// Time as a collaborator: services take a Clock so that tests can move time (retention, inactivity,
// rate-limit windows) without sleeping.

#include <chrono>
#include <cstdint>
#include <string>

namespace easel {

class Clock {
public:
    virtual ~Clock() = default;
    // Seconds since the Unix epoch.
    virtual std::int64_t nowSeconds() const = 0;
    // Milliseconds on a monotonic clock (any epoch), for delays that a change of the wall clock must
    // not stretch or cut short (webhook retries). A clock that only has seconds counts in whole ones.
    virtual std::int64_t steadyMilliseconds() const { return nowSeconds() * 1000; }
};

class SystemClock final : public Clock {
public:
    std::int64_t nowSeconds() const override {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
    std::int64_t steadyMilliseconds() const override {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }
};

// "2026-11-26T14:00:00Z"
std::string isoTime(std::int64_t unixSeconds);

}  // namespace easel
