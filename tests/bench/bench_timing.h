#pragma once
// What every easel-bench mode measures with: peak resident memory and a robust timing of a callable.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace easel::bench {

inline double peakRssGiB() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}

// The median of `repeats` timed runs after one warm-up run (first-touch allocation and oneDNN
// primitive creation are not what we measure). The median, not the mean: on a shared VM one run in a
// few is slowed by the host, and that is not the code's speed.
template <typename F>
double medianSeconds(F&& f, int repeats) {
    f();
    std::vector<double> seconds;
    for (int i = 0; i < repeats; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(seconds.begin(), seconds.end());
    const auto n = seconds.size();
    return n % 2 ? seconds[n / 2] : (seconds[n / 2 - 1] + seconds[n / 2]) / 2;
}

}  // namespace easel::bench
