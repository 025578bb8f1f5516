#pragma once
// A deliberately dumb HTTP client over a POSIX socket, so tests can send exactly the bytes they
// want (garbage, conflicting headers, slow trickles) to a server on 127.0.0.1.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace easel::testing {

class RawConnection {
public:
    explicit RawConnection(std::uint16_t port) {
        m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (m_fd < 0 || ::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
        }
    }
    ~RawConnection() {
        if (m_fd >= 0) ::close(m_fd);
    }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    // Returns false when the peer closed the connection.
    bool send(std::string_view bytes) {
        while (!bytes.empty()) {
            const auto n = ::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // Reads until the peer closes or `timeout` passes; returns what arrived.
    std::string readAll(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
        std::string out;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        char buf[4096];
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{m_fd, POLLIN, 0};
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (::poll(&p, 1, static_cast<int>(std::max<long long>(1, left.count()))) <= 0) break;
            const auto n = ::recv(m_fd, buf, sizeof buf, 0);
            if (n <= 0) {
                m_closed = true;
                break;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
        return out;
    }

    // Reads one response with a Content-Length body (enough for our JSON answers).
    std::string readResponse(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
        std::string out;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        char buf[4096];
        while (std::chrono::steady_clock::now() < deadline) {
            const auto headerEnd = out.find("\r\n\r\n");
            if (headerEnd != std::string::npos) {
                std::size_t length = 0;
                const auto cl = lowerCopy(out.substr(0, headerEnd)).find("content-length:");
                if (cl != std::string::npos) length = std::stoul(out.substr(cl + 15));
                if (out.size() >= headerEnd + 4 + length) return out;
            }
            pollfd p{m_fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            const auto n = ::recv(m_fd, buf, sizeof buf, 0);
            if (n <= 0) {
                m_closed = true;
                break;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
        return out;
    }

    bool closedByPeer() const { return m_closed; }

    static int statusOf(const std::string& response) {
        if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
        return std::stoi(response.substr(9, 3));
    }
    static std::string bodyOf(const std::string& response) {
        const auto pos = response.find("\r\n\r\n");
        return pos == std::string::npos ? std::string() : response.substr(pos + 4);
    }

private:
    static std::string lowerCopy(std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    }
    int m_fd = -1;
    bool m_closed = false;
};

}  // namespace easel::testing
