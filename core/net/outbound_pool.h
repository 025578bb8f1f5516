#pragma once
// A small bounded pool of threads for outbound HTTP: users' image URLs and webhooks run here, never
// on the HTTP server's workers, so a peer that accepts and never answers ties up one of these
// threads until its deadline and nothing else. The queue is bounded: past it, work is refused at
// once ("busy") instead of piling up. stop() cancels what runs and what waits, within about a
// second.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "net/http_client.h"

namespace easel::net {

struct OutboundPoolOptions {
    int threads = 4;
    // Waiting for a thread; more are refused as busy. Each waiting image fetch holds an HTTP worker,
    // so threads + maxQueued must stay well below the HTTP server's workers.
    std::size_t maxQueued = 4;
};

class OutboundPool {
public:
    // Exactly one of the two is set.
    using Done = std::function<void(const OutboundResponse* response, const OutboundError* error)>;

    explicit OutboundPool(OutboundPoolOptions options = {});
    ~OutboundPool();
    OutboundPool(const OutboundPool&) = delete;
    OutboundPool& operator=(const OutboundPool&) = delete;

    // Queues a fetch; `done` runs on a pool thread. False, queueing nothing, when the queue is full
    // or the pool has stopped. The request's timeout counts from now, time spent queued included.
    bool post(OutboundRequest request, UrlPolicy policy, Done done);

    // Runs a fetch on the pool and waits for it. Throws OutboundError: Busy when the queue is full or
    // the request's timeout (counted from the call) passed while it waited for a thread, Cancelled
    // when the pool stops meanwhile, else the fetch's own failure (TimedOut past its deadline).
    OutboundResponse fetch(OutboundRequest request, const UrlPolicy& policy);

    // Cancels running and queued fetches (their `done` gets a Cancelled error), refuses new ones and
    // joins the threads. Idempotent.
    void stop();

    int running() const;
    std::size_t queued() const;

private:
    struct Task {
        OutboundRequest request;
        UrlPolicy policy;
        Done done;
        std::chrono::steady_clock::time_point until;
    };
    void loop();

    OutboundPoolOptions m_options;
    std::shared_ptr<std::atomic<bool>> m_cancel = std::make_shared<std::atomic<bool>>(false);
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    std::deque<Task> m_queue;
    int m_running = 0;
    bool m_stopping = false;
    std::vector<std::thread> m_threads;
};

}  // namespace easel::net
