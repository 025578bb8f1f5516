// libFuzzer: a generation request's JSON, as the v6 endpoints receive it, through parseSubmit()
// (every field reader, image fields as base64 and as links) and the service's validation, against a
// real GenerationService on a temp-dir database with the fake generator. Links to other hosts go to
// a stopped outbound pool, so nothing leaves the process.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "accounts/crypto.h"
#include "common/clock.h"
#include "common/service_error.h"
#include "fake_generator.h"
#include "jobs/job_runner.h"
#include "net/outbound_pool.h"
#include "server/generation_codec.h"
#include "service/generation_service.h"
#include "storage/blob_store.h"
#include "storage/database.h"
#include "storage/migrations.h"

namespace {

struct World {
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("easel-fuzz-" + std::to_string(::getpid()));
    easel::SystemClock clock;
    easel::storage::Database db{(std::filesystem::create_directories(dir), dir / "easel.db")};
    easel::storage::FileBlobStore blobs{dir / "files"};
    easel::testing::FakeGenerator generator;
    easel::jobs::JobRunner runner{db, blobs, generator, clock, {}, [](std::int64_t) { return 1; }};
    easel::service::GenerationService service{db, blobs, runner, generator, clock};
    easel::net::OutboundPool pool{{1, 1}};
    World() {
        easel::storage::migrate(db);
        pool.stop();
    }
};

World& world() {
    static World w;
    return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& w = world();
    const auto body = nlohmann::json::parse(data, data + size, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return 0;
    for (const char* kind : {"text2img", "img2img", "inpaint"}) {
        try {
            auto request =
                easel::server::parseSubmit(body, kind, w.service, 1, {&w.pool, false}, "http://127.0.0.1:7860");
            (void)request;
        } catch (const easel::ServiceError&) {
        } catch (const std::exception&) {
        }
    }
    return 0;
}
