#pragma once
// Runs `fn` and returns the ServiceError it throws, so a test can check the code, the message and
// the field errors; a test failure when it throws none.

#include <gtest/gtest.h>

#include "common/service_error.h"

namespace easel::testing {

template <typename Fn>
ServiceError errorOf(Fn&& fn) {
    try {
        fn();
    } catch (const ServiceError& e) {
        return e;
    }
    ADD_FAILURE() << "no ServiceError was thrown";
    return ServiceError(ErrorCode::Internal, "none");
}

}  // namespace easel::testing
