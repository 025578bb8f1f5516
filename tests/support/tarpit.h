#pragma once
// A hostile peer on 127.0.0.1: it accepts every connection and then never reads or answers, holding
// the sockets open until it is destroyed. What an outbound fetch or a webhook meets when a user
// points them at a stalled host.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace easel::testing {

class Tarpit {
public:
    Tarpit() {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (m_fd < 0 || ::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(m_fd, 128) != 0 || ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            throw std::runtime_error("tarpit: cannot listen on 127.0.0.1");
        }
        m_port = ntohs(addr.sin_port);
        m_thread = std::thread([this] {
            while (!m_stop) {
                pollfd p{m_fd, POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0) continue;
                const int c = ::accept(m_fd, nullptr, nullptr);
                if (c < 0) continue;
                std::lock_guard lock(m_mutex);
                m_clients.push_back(c);
            }
        });
    }
    ~Tarpit() {
        m_stop = true;
        m_thread.join();
        ::close(m_fd);
        for (int c : m_clients) ::close(c);
    }
    Tarpit(const Tarpit&) = delete;
    Tarpit& operator=(const Tarpit&) = delete;

    std::uint16_t port() const { return m_port; }
    std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }
    int accepted() {
        std::lock_guard lock(m_mutex);
        return static_cast<int>(m_clients.size());
    }

private:
    int m_fd = -1;
    std::uint16_t m_port = 0;
    std::atomic<bool> m_stop{false};
    std::mutex m_mutex;
    std::vector<int> m_clients;
    std::thread m_thread;
};

}  // namespace easel::testing
