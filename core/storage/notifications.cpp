#include "storage/notifications.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <iostream>

namespace easel::storage {

void notify(const Database& db, const char* channel) {
    if (db.dialect() != Dialect::PostgreSQL) return;
    const auto l = db.lock();
    db.statement("SELECT pg_notify(?, '')").bindAll(channel).step();
}

NotificationListener::NotificationListener(std::string url, std::vector<std::string> channels, Handler handler)
    : m_url(std::move(url)), m_channels(std::move(channels)), m_handler(std::move(handler)) {
    if (::pipe(m_wakeFds) != 0) throw DatabaseError("notification listener: no pipe");
    m_thread = std::thread([this] { run(); });
}

NotificationListener::~NotificationListener() {
    m_stop = true;
    const char byte = 1;
    [[maybe_unused]] const auto written = ::write(m_wakeFds[1], &byte, 1);
    if (m_thread.joinable()) m_thread.join();
    ::close(m_wakeFds[0]);
    ::close(m_wakeFds[1]);
}

void NotificationListener::run() {
    auto pause = [&](std::chrono::milliseconds d) {  // sleeps, or returns early when stopped
        pollfd p{m_wakeFds[0], POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(d.count()));
    };
    bool warned = false;
    while (!m_stop) {
        PGconn* conn = PQconnectdb(m_url.c_str());
        std::string sql;
        for (const auto& c : m_channels) sql += "LISTEN " + c + ";";  // Easel's constant names, not input
        PGresult* r = PQstatus(conn) == CONNECTION_OK ? PQexec(conn, sql.c_str()) : nullptr;
        const bool ok = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            if (!warned) std::cerr << "easel: notification listener: " << PQerrorMessage(conn) << std::flush;
            warned = true;
            PQfinish(conn);
            pause(std::chrono::seconds(2));
            continue;
        }
        warned = false;
        m_listening = true;
        // Whatever happened while it was not listening: the handlers look at the queue once.
        for (const auto& c : m_channels) m_handler(c);
        while (!m_stop) {
            pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {m_wakeFds[0], POLLIN, 0}};
            if (::poll(fds, 2, 30'000) < 0) continue;
            if (fds[1].revents != 0) break;
            if (PQconsumeInput(conn) == 0) break;  // the connection dropped
            while (PGnotify* n = PQnotifies(conn)) {
                const std::string channel = n->relname;
                PQfreemem(n);
                try {
                    m_handler(channel);
                } catch (const std::exception& e) {
                    std::cerr << "easel: notification handler: " << e.what() << '\n';
                }
            }
            if (fds[0].revents == 0 && PQstatus(conn) == CONNECTION_OK) {
                // 30 s without a word: make sure the link is still there.
                PGresult* ping = PQexec(conn, "SELECT 1");
                const bool alive = PQresultStatus(ping) == PGRES_TUPLES_OK;
                PQclear(ping);
                if (!alive) break;
            }
        }
        m_listening = false;
        PQfinish(conn);
    }
}

}  // namespace easel::storage
