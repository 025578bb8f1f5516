#include "app/admin_command.h"

#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/backend.h"

namespace easel::app {
namespace {

// The password from --password-file, else --password (visible to other users in `ps` and kept in shell
// history: for scripts that cannot do better), else one line of standard input, read without echo when
// it is a terminal.
std::string passwordArgument(const ArgList& args) {
    std::string password;
    if (const auto file = args.value("--password-file")) {
        std::ifstream in(*file);
        if (!in) throw UsageError("cannot read --password-file " + *file);
        std::getline(in, password);
    } else if (const auto given = args.value("--password")) {
        password = *given;
    } else {
        const bool terminal = ::isatty(STDIN_FILENO) != 0;
        termios saved{};
        if (terminal) {
            std::cerr << "Password: " << std::flush;
            ::tcgetattr(STDIN_FILENO, &saved);
            termios quiet = saved;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        }
        std::getline(std::cin, password);
        if (terminal) {
            ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
            std::cerr << '\n';
        }
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) {
        throw UsageError("admin create-user needs a password: on standard input, with --password-file, or --password");
    }
    return password;
}

}  // namespace

int runAdmin(const std::string& verb, const ArgList& args) {
    BackendConfig config;
    config.dataDir = args.value("--data-dir").value_or("easel-data");
    config.database = databaseOption(args);
    config.blobStore = blobStoreOption(args);
    auto required = [&](const std::string& option) {
        auto v = args.value(option);
        if (!v || v->empty()) throw UsageError("admin " + verb + " needs " + option);
        return *v;
    };
    if (verb == "create-user") {
        args.rejectUnknown(
            {"--email", "--password", "--password-file", "--plan", "--data-dir", "--database", "--blob-store"},
            {"--admin"});
        const auto email = required("--email");
        const auto password = passwordArgument(args);
        service::AccountsCore core(config);
        const auto a =
            core.accounts().createUser(email, password, args.value("--plan").value_or("free"), args.has("--admin"));
        std::cout << nlohmann::json{{"user_id", a.userId},
                                    {"email", a.email},
                                    {"plan", a.plan},
                                    {"api_key", a.apiKey},
                                    {"is_admin", args.has("--admin")}}
                         .dump()
                  << std::endl;
        return 0;
    }
    if (verb == "set-plan") {
        args.rejectUnknown({"--email", "--plan", "--data-dir", "--database", "--blob-store"}, {});
        const auto email = required("--email");
        const auto plan = required("--plan");
        service::AccountsCore core(config);
        core.accounts().setPlan(email, plan);
        std::cout << nlohmann::json{{"status", "success"}, {"email", email}, {"plan", plan}}.dump() << std::endl;
        return 0;
    }
    if (verb == "list-users") {
        args.rejectUnknown({"--data-dir", "--database", "--blob-store"}, {});
        service::AccountsCore core(config);
        auto users = nlohmann::json::array();
        for (const auto& u : core.accounts().listUsers()) {
            users.push_back({{"user_id", u.id},
                             {"email", u.email},
                             {"plan", u.plan},
                             {"is_admin", u.isAdmin},
                             {"images_used", u.imagesUsed},
                             {"created_at", isoTime(u.createdAt)},
                             {"last_active_at", isoTime(u.lastActiveAt)}});
        }
        std::cout << users.dump(2) << std::endl;
        return 0;
    }
    if (verb == "delete-user") {
        args.rejectUnknown({"--email", "--data-dir", "--database", "--blob-store"}, {});
        const auto email = required("--email");
        service::AccountsCore core(config);
        for (const auto& u : core.accounts().listUsers()) {
            if (u.email == email) {
                core.accounts().purge(u.id);
                std::cout << nlohmann::json{{"status", "success"}, {"deleted", email}}.dump() << std::endl;
                return 0;
            }
        }
        throw ServiceError(ErrorCode::NotFound, "no account with the e-mail " + email);
    }
    throw UsageError("unknown admin command '" + verb + "' (create-user, set-plan, list-users, delete-user)");
}

}  // namespace easel::app
