#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/random_token.h"
#include "service/platform.h"

namespace easel::service {

DesktopOwner ensureDesktopOwner(accounts::AccountService& accounts, const std::filesystem::path& dataDir) {
    const auto file = dataDir / "desktop-owner.json";
    DesktopOwner owner;
    std::string password;
    if (std::filesystem::exists(file)) {
        std::ifstream in(file);
        const auto j = nlohmann::json::parse(in, nullptr, false);
        if (j.is_discarded() || !j.contains("email") || !j.contains("password")) {
            throw std::runtime_error(file.string() + " is damaged; remove it to create a new local account");
        }
        owner.email = j["email"];
        password = j["password"];
    } else {
        owner.email = "owner@easel.local";
        password = randomToken();
        accounts.createUser(owner.email, password, "premium", true);
        const auto tmp = file.string() + ".tmp";
        ::unlink(tmp.c_str());
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);  // private from the start
        if (fd < 0) throw std::runtime_error("cannot create " + tmp);
        const auto text = nlohmann::json{{"email", owner.email}, {"password", password}}.dump() + "\n";
        const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        ::close(fd);
        if (!ok) throw std::runtime_error("cannot write " + tmp);
        std::filesystem::rename(tmp, file);
    }
    owner.sessionToken = accounts.login(owner.email, password, "127.0.0.1");
    const auto caller = accounts.authenticateToken(owner.sessionToken);
    owner.apiKey = accounts.viewKey(caller.userId, password);
    return owner;
}

}  // namespace easel::service
