#include "ui/generation_queue.h"

#include <gtest/gtest.h>

#include "fake_easel_backend.h"
#include "ui_test_support.h"

namespace easel::ui {
namespace {

using testing::FakeEaselBackend;

struct QueueFixture : ::testing::Test {
    FakeEaselBackend backend;
    ApiClient client{backend.url()};
    GenerationQueue queue{&client};
    QList<QueuedJob> finished;
    QList<ApiError> failures;

    void SetUp() override {
        client.setApiKey(backend.apiKey);
        queue.setPollInterval(20);
        QObject::connect(&queue, &GenerationQueue::jobFinished, [this](const QueuedJob& j) { finished.append(j); });
        QObject::connect(&queue, &GenerationQueue::jobFailed,
                         [this](const QueuedJob&, const ApiError& e) { failures.append(e); });
    }
    int enqueue(const QString& prompt) {
        GenerationParams p;
        p.prompt = prompt;
        return queue.enqueue(GenerationKind::Text2Img, p, requestBody(GenerationKind::Text2Img, p, {}));
    }
};

TEST_F(QueueFixture, PollsUntilSuccess) {
    const int id = enqueue(QStringLiteral("a red star"));
    ASSERT_NE(queue.job(id), nullptr);
    EXPECT_EQ(queue.job(id)->state, QueuedJob::State::Submitting);
    ASSERT_TRUE(waitFor([&] { return queue.job(id) && queue.job(id)->status.step > 0; }));
    EXPECT_EQ(queue.job(id)->state, QueuedJob::State::Running);
    EXPECT_TRUE(queue.job(id)->describe().startsWith(QStringLiteral("Step 5 / 20")));
    ASSERT_TRUE(waitFor([&] { return !finished.isEmpty(); }));
    EXPECT_EQ(finished[0].serverId, 12);
    EXPECT_EQ(finished[0].status.output.size(), 1);
    EXPECT_EQ(finished[0].status.meta.value(QStringLiteral("seed")).toInt(), 1234);
    EXPECT_TRUE(queue.activeJobs().isEmpty());
}

TEST_F(QueueFixture, CancelSendsTheServerId) {
    backend.pollsPerJob = 1000;
    const int first = enqueue(QStringLiteral("one"));
    const int second = enqueue(QStringLiteral("two"));
    const int third = enqueue(QStringLiteral("three"));
    EXPECT_EQ(queue.activeJobs().size(), 3);
    queue.cancel(first);  // sent, not answered yet: the cancel goes out once the id is known
    queue.cancel(third);  // not sent yet: it never reaches the server
    EXPECT_EQ(queue.activeJobs().size(), 2);
    ASSERT_TRUE(waitFor([&] { return queue.activeJobs().size() == 1 && queue.activeJobs()[0].serverId != 0; }));
    EXPECT_EQ(queue.activeJobs()[0].localId, second);
    EXPECT_EQ(backend.cancelled, QList<qint64>{12});
    queue.cancelCurrent();
    ASSERT_TRUE(waitFor([&] { return queue.activeJobs().isEmpty(); }));
    EXPECT_EQ(backend.cancelled, (QList<qint64>{12, 13}));
    QStringList submitted;
    for (const auto& r : backend.requests()) {
        if (r.path.startsWith(QStringLiteral("/api/v6/images/text2img")))
            submitted.append(r.json().value(QStringLiteral("prompt")).toString());
    }
    EXPECT_EQ(submitted, (QStringList{QStringLiteral("one"), QStringLiteral("two")}));
    EXPECT_TRUE(finished.isEmpty());
    EXPECT_TRUE(failures.isEmpty());
}

TEST_F(QueueFixture, SubmitsGoOutOneAtATimeInClickOrder) {
    backend.pollsPerJob = 1000;
    QStringList prompts;
    for (int i = 0; i < 5; ++i) prompts.append(QStringLiteral("prompt %1").arg(i));
    QList<int> ids;
    for (const auto& p : prompts) ids.append(enqueue(p));
    // When each submit is answered, the server has seen no later one: parallel submits could reach
    // it in any order and be queued out of the order the user clicked.
    QList<qsizetype> submitsSeenAtAnswer;
    QObject::connect(&queue, &GenerationQueue::jobsChanged, [&] {
        for (qsizetype i = submitsSeenAtAnswer.size(); i < ids.size(); ++i) {
            const auto* job = queue.job(ids[i]);
            if (job == nullptr || job->serverId == 0) return;
            qsizetype submits = 0;
            for (const auto& r : backend.requests())
                submits += r.path.startsWith(QStringLiteral("/api/v6/images/text2img")) ? 1 : 0;
            submitsSeenAtAnswer.append(submits);
        }
    });
    ASSERT_TRUE(waitFor([&] { return submitsSeenAtAnswer.size() == ids.size(); }));
    EXPECT_EQ(submitsSeenAtAnswer, (QList<qsizetype>{1, 2, 3, 4, 5}));
    for (int i = 0; i < ids.size(); ++i) EXPECT_EQ(queue.job(ids[i])->serverId, 12 + i) << i;
}

TEST_F(QueueFixture, QuotaExhaustedFailsTheJob) {
    backend.quotaExhausted = true;
    enqueue(QStringLiteral("x"));
    ASSERT_TRUE(waitFor([&] { return !failures.isEmpty(); }));
    EXPECT_EQ(failures[0].kind, ApiErrorKind::QuotaExhausted);
    EXPECT_TRUE(queue.activeJobs().isEmpty());
}

}  // namespace
}  // namespace easel::ui
