#include "accounts/plans.h"

namespace easel::accounts {

const std::vector<Plan>& plans() {
    // free: the hosted service's 20 generations on sign-up, counted per image, and one fine-tune to try it.
    static const std::vector<Plan> kPlans{
        {"free", 20, 2, 1, 0, 10, 30, 100ll << 20, 1},
        {"basic", 13'000, 5, 1, 1, 60, 50, 5ll << 30, 10},
        {"standard", 50'000, 10, 2, 2, 120, 50, 20ll << 30, 50},
        {"premium", std::nullopt, 15, 4, 3, 300, 100, 100ll << 30, std::nullopt},
    };
    return kPlans;
}

const Plan* findPlan(const std::string& name) {
    for (const auto& p : plans()) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

std::string planNames() {
    std::string out;
    for (const auto& p : plans()) out += (out.empty() ? "" : ", ") + p.name;
    return out;
}

}  // namespace easel::accounts
