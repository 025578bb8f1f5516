// The plan table: the names an admin can give, and limits that grow with the plan.

#include "accounts/plans.h"

#include <gtest/gtest.h>

namespace easel::accounts {
namespace {

TEST(Plans, TheFourPlansAreNamedInOrder) {
    EXPECT_EQ(planNames(), "free, basic, standard, premium");
    ASSERT_EQ(plans().size(), 4u);
    for (const auto& p : plans()) EXPECT_EQ(findPlan(p.name), &p);
}

TEST(Plans, AnUnknownNameIsNoPlan) {
    EXPECT_EQ(findPlan("gold"), nullptr);
    EXPECT_EQ(findPlan("Free"), nullptr);  // names are exact
    EXPECT_EQ(findPlan(""), nullptr);
}

TEST(Plans, FreeHasTheHostedServicesTwentyImagesAndPremiumNoQuota) {
    const auto* free = findPlan("free");
    ASSERT_NE(free, nullptr);
    EXPECT_EQ(free->imageQuota, 20);
    EXPECT_EQ(free->maxConcurrent, 1);
    EXPECT_EQ(free->priority, 0);
    EXPECT_EQ(findPlan("premium")->imageQuota, std::nullopt);
    EXPECT_EQ(free->trainingQuota, 1);  // one fine-tune to try it
    EXPECT_EQ(findPlan("premium")->trainingQuota, std::nullopt);
}

TEST(Plans, EachPlanRunsFirstAndAllowsAtLeastAsMuchAsTheOneBelow) {
    const auto& all = plans();
    for (std::size_t i = 1; i < all.size(); ++i) {
        const auto& lower = all[i - 1];
        const auto& higher = all[i];
        SCOPED_TRACE(higher.name);
        EXPECT_GT(higher.priority, lower.priority);
        EXPECT_GE(higher.maxQueued, lower.maxQueued);
        EXPECT_GE(higher.maxConcurrent, lower.maxConcurrent);
        EXPECT_GE(higher.requestsPerMinute, lower.requestsPerMinute);
        EXPECT_GE(higher.maxSteps, lower.maxSteps);
        if (lower.imageQuota && higher.imageQuota) {
            EXPECT_GT(*higher.imageQuota, *lower.imageQuota);
        }
        if (!lower.imageQuota) {
            EXPECT_FALSE(higher.imageQuota);
        }
        if (lower.trainingQuota && higher.trainingQuota) {
            EXPECT_GT(*higher.trainingQuota, *lower.trainingQuota);
        }
        if (!lower.trainingQuota) {
            EXPECT_FALSE(higher.trainingQuota);
        }
    }
}

}  // namespace
}  // namespace easel::accounts
