#pragma once
// Wake-ups between servers that share a PostgreSQL database (LISTEN / NOTIFY): a server that queues a
// job or asks for a cancel notifies a channel in the same transaction (delivered at commit), and every
// other server's listener calls its handler at once instead of waiting for its next poll. The listener
// holds a connection of its own and reconnects when it drops; notifications sent while it was away are
// lost, which the pollers it wakes cover. On SQLite, notify() does nothing and no listener is made.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "storage/database.h"

namespace easel::storage {

// The channels Easel uses.
inline constexpr const char* kJobsQueuedChannel = "easel_jobs_queued";
inline constexpr const char* kCancelChannel = "easel_cancel_requested";

// Inside the caller's transaction (or at once outside one): NOTIFY channel. No-op on SQLite.
void notify(const Database& db, const char* channel);

class NotificationListener {
public:
    using Handler = std::function<void(const std::string& channel)>;
    // Listens on `channels` of the PostgreSQL database at `url` until destroyed; calls `handler` on its
    // own thread, once per notification.
    NotificationListener(std::string url, std::vector<std::string> channels, Handler handler);
    ~NotificationListener();
    NotificationListener(const NotificationListener&) = delete;
    NotificationListener& operator=(const NotificationListener&) = delete;

    // Whether the listening connection is up (for tests and /health).
    bool listening() const { return m_listening.load(); }

private:
    void run();

    std::string m_url;
    std::vector<std::string> m_channels;
    Handler m_handler;
    std::atomic<bool> m_stop{false};
    std::atomic<bool> m_listening{false};
    int m_wakeFds[2] = {-1, -1};  // a pipe: written to stop the thread out of poll()
    std::thread m_thread;
};

}  // namespace easel::storage
