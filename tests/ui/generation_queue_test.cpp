#include "generation_queue.h"

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
    EXPECT_EQ(queue.activeJobs().size(), 2);
    queue.cancel(second);  // before the server answered: sent once the id is known
    ASSERT_TRUE(waitFor([&] { return queue.activeJobs().size() == 1; }));
    EXPECT_EQ(queue.activeJobs()[0].localId, first);
    EXPECT_EQ(backend.cancelled, QList<qint64>{13});
    queue.cancelCurrent();
    ASSERT_TRUE(waitFor([&] { return queue.activeJobs().isEmpty(); }));
    EXPECT_EQ(backend.cancelled, (QList<qint64>{13, 12}));
    EXPECT_TRUE(finished.isEmpty());
    EXPECT_TRUE(failures.isEmpty());
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
