#pragma once
// Starting the real servers that tests talk to (PostgreSQL, an S3-compatible store): a free loopback
// port, and a child process whose output goes to a log and which dies with the test process.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace easel::testing {

// A loopback port nothing listens on right now.
inline int freeLoopbackPort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
        ::close(fd);
        throw std::runtime_error("no free loopback port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

// True once something accepts connections on 127.0.0.1:port.
inline bool loopbackPortAnswers(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

// fork + execv of argv[0] (a path), its output to `log`; returns the child's pid. `dieWithParent`: it
// gets SIGQUIT when the test process ends, however it ends. `uid`: run as that user (a root test
// starting PostgreSQL).
inline pid_t spawnChild(const std::vector<std::string>& argv, const std::string& log, bool dieWithParent = true,
                        std::optional<uid_t> uid = std::nullopt, gid_t gid = 0) {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid > 0) return pid;
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
    }
    if (uid) {
        if (fd >= 0 && ::fchown(fd, *uid, gid) != 0) ::_exit(126);
        if (::setgid(gid) != 0 || ::setuid(*uid) != 0) ::_exit(126);
    }
    if (dieWithParent) {  // after setuid, which clears it
        ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
        if (::getppid() != parent) ::_exit(0);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
}

}  // namespace easel::testing
