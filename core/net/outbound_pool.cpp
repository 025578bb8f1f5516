#include "net/outbound_pool.h"

#include <future>
#include <variant>

namespace easel::net {

OutboundPool::OutboundPool(OutboundPoolOptions options) : m_options(options) {
    for (int i = 0; i < std::max(1, m_options.threads); ++i) m_threads.emplace_back([this] { loop(); });
}

OutboundPool::~OutboundPool() { stop(); }

bool OutboundPool::post(OutboundRequest request, UrlPolicy policy, Done done) {
    {
        std::lock_guard lock(m_mutex);
        if (m_stopping || m_queue.size() >= m_options.maxQueued) return false;
        const auto until = std::chrono::steady_clock::now() + request.timeout;
        if (!request.cancelled) request.cancelled = m_cancel;
        m_queue.push_back({std::move(request), policy, std::move(done), until});
    }
    m_wake.notify_one();
    return true;
}

OutboundResponse OutboundPool::fetch(OutboundRequest request, const UrlPolicy& policy) {
    // The result crosses threads as plain values, never as an exception_ptr or a copied runtime_error: both share
    // a refcounted buffer whose atomics live in uninstrumented libstdc++, which ThreadSanitizer reports as races.
    // The caller throws an error of its own, made from the message.
    struct Failure {
        std::string message;
        OutboundError::Kind kind;
    };
    using Outcome = std::variant<OutboundResponse, Failure>;
    auto result = std::make_shared<std::promise<Outcome>>();
    auto future = result->get_future();
    const bool queued =
        post(std::move(request), policy, [result](const OutboundResponse* response, const OutboundError* error) {
            if (response != nullptr) {
                result->set_value(Outcome(*response));
            } else {
                result->set_value(Outcome(Failure{std::string(error->what()), error->kind()}));
            }
        });
    if (!queued) {
        throw OutboundError("the server is busy fetching other images; try again in a few seconds",
                            OutboundError::Kind::Busy);
    }
    Outcome outcome = future.get();  // every task ends with `done`: by its deadline at the latest, or by stop()
    if (const auto* failure = std::get_if<Failure>(&outcome)) throw OutboundError(failure->message, failure->kind);
    return std::get<OutboundResponse>(std::move(outcome));
}

void OutboundPool::loop() {
    for (;;) {
        Task task;
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
            if (m_queue.empty()) return;  // stopping, and nothing left to answer
            task = std::move(m_queue.front());
            m_queue.pop_front();
            ++m_running;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(task.until - std::chrono::steady_clock::now());
        try {
            if (task.request.cancelled->load()) {
                throw OutboundError("the request was cancelled: the server is stopping",
                                    OutboundError::Kind::Cancelled);
            }
            if (left.count() <= 0) {
                throw OutboundError("the server is busy fetching other images; try again in a few seconds",
                                    OutboundError::Kind::Busy);
            }
            task.request.timeout = left;
            const auto response = httpFetch(task.request, task.policy);
            task.done(&response, nullptr);
        } catch (const OutboundError& e) {
            task.done(nullptr, &e);
        } catch (const std::exception& e) {
            const OutboundError error(e.what());
            task.done(nullptr, &error);
        }
        std::lock_guard lock(m_mutex);
        --m_running;
    }
}

void OutboundPool::stop() {
    {
        std::lock_guard lock(m_mutex);
        if (m_stopping && m_threads.empty()) return;
        m_stopping = true;
    }
    m_cancel->store(true);
    m_wake.notify_all();
    for (auto& t : m_threads) {
        if (t.joinable()) t.join();
    }
    std::lock_guard lock(m_mutex);
    m_threads.clear();
}

int OutboundPool::running() const {
    std::lock_guard lock(m_mutex);
    return m_running;
}

std::size_t OutboundPool::queued() const {
    std::lock_guard lock(m_mutex);
    return m_queue.size();
}

}  // namespace easel::net
