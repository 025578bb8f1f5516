#pragma once
// The one way tests wait for what another thread does (a worker, the HTTP server, the webhook
// sender): poll a condition until it holds or a deadline passes. A fixed sleep is either too short on
// a loaded CI machine or wastes time everywhere else; time that the code under test measures comes
// from a FakeClock, which the test moves instead of waiting.

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace easel::testing {

// Calls `condition` every `poll` until it returns true or `timeout` has passed (it is called once more
// at the deadline). The result is true or false like a bool, and says how long it waited when it failed:
//   ASSERT_TRUE(eventually([&] { return runner.runningCount() == 0; }));
//   if (!eventually(ready, 2s)) ...
template <typename Condition>
::testing::AssertionResult eventually(Condition&& condition,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                      std::chrono::milliseconds poll = std::chrono::milliseconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const bool late = std::chrono::steady_clock::now() >= deadline;
        if (condition()) return ::testing::AssertionSuccess();
        if (late) {
            return ::testing::AssertionFailure()
                   << "the condition still did not hold after " << timeout.count() << " ms";
        }
        std::this_thread::sleep_for(poll);
    }
}

}  // namespace easel::testing
