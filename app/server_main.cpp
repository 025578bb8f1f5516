// easel-server: the headless REST backend. Composition root only: parse arguments, wire objects, run.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "app/admin_command.h"
#include "app/app_args.h"
#include "app/backend.h"
#include "app/backend_setup.h"
#include "app/generate_command.h"
#include "inference/runtime_info.h"
#include "jobs/model_catalog.h"
#include "models/model_registry.h"
#include "server/http_server.h"
#include "server/openapi.h"

namespace {

constexpr std::string_view kUsage = R"(Usage: easel-server [options]
       easel-server generate --prompt TEXT [generate options]
       easel-server admin create-user --email E [--plan PLAN] [--admin] [--data-dir DIR] [--database URL] [--blob-store URL]
                                          (password on stdin, or --password-file F)
       easel-server admin set-plan --email E --plan PLAN [--data-dir DIR] [--database URL] [--blob-store URL]
       easel-server admin list-users [--data-dir DIR] [--database URL] [--blob-store URL]
       easel-server admin delete-user --email E [--data-dir DIR] [--database URL] [--blob-store URL]
       easel-server openapi        (prints the OpenAPI document)

The Easel REST backend: Stable Diffusion generation behind accounts, API keys and quotas.

Options:
  --listen HOST:PORT   address to bind (default 127.0.0.1:7860)
  --data-dir DIR       where the database, images and models live (default ./easel-data)
  --database URL       keep accounts, quotas and jobs in PostgreSQL instead of <data dir>/easel.db:
                       postgresql://USER@HOST:PORT/DB (default $EASEL_DATABASE_URL; the password from
                       ~/.pgpass or $PGPASSWORD rather than the URL, which other users can see in ps)
  --blob-store URL     keep images and uploads in an S3-compatible bucket instead of <data dir>/files:
                       s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT (default $EASEL_BLOB_STORE; more
                       settings: region, style=path|virtual, links=proxy|presigned, link_seconds,
                       part_mb); the key in $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY
  --lease-seconds N    with --database: a running job whose server stops renewing it for N seconds
                       (killed, cut off) is re-queued by another server (default 60)
  --role all|api|worker  with --database: "api" answers the REST API and queues jobs but loads no
                       model and generates nothing; "worker" loads models and runs jobs, and answers
                       only /health and /metrics; "all" (default) does both. A model loaded
                       through any server is installed by every server that generates
  --model PATH         default model (default: the built-in model, easel-shapes-64)
  --closed-signup      only admins create accounts (POST /api/v1/auth/signup answers 403)
  --public-url URL     base of the image links in responses (default: from the request's Host)
  --retention-days N   keep generated images N days (default 30; "temp": true keeps them 1 day)
  --inactive-days N    delete free accounts idle N days (default 365; 0 = never)
  --sync-wait S        answer "processing" when a job takes longer than S seconds (default 15)
  --min-free-disk-mb N refuse new uploads and generations (503) while the data dir's disk has less
                       than N MB free (default 512)
  --job-time-limit S   stop and fail (refund) a job still running after S seconds (default 1800; 0: none)
  --training-checkpoint-seconds S
                       how often a fine-tune saves the checkpoint a restart resumes from (default 120)
  --max-connections N  open connections in all (default 1024); past it only /health is answered,
                       everything else gets 503 (one address: at most 64, an IPv6 /64 counts as one)
  --trusted-proxy CIDR[,CIDR...]  reverse proxies whose X-Forwarded-For names the client (for the
                       per-address limits); without it the TCP peer is the client
  --access-log json|off  one JSON line per request on stderr (time, request_id, method, path, status,
                       duration_ms, bytes, remote; default json); X-Request-Id is kept or made
  --hub-url URL        Hugging Face hub for load_model (default $HF_ENDPOINT or https://huggingface.co)
  --allow-private-downloads   let load_model fetch from private / loopback addresses
  --allow-private-image-urls  let users' init_image / mask_image links reach private / loopback addresses
                              (only where every user is trusted: it lets them probe the server's network)
  --model-memory-gb N  weights of added models kept loaded at once (default 8; least recently used go)
  --version            print the version and exit
  -h, --help           print this help and exit

Generate options (one-shot, writes PNGs with the A1111 "parameters" chunk):
  --model PATH           model folder (model.json) or SD 1.x/2.x .safetensors (default: the built-in model)
  --prompt TEXT          what to draw (A1111 weighting: (word), (word:1.3), [word])
  --negative-prompt TEXT what to avoid
  --steps N              sampling steps (default: the model's)
  --sampler NAME         an A1111 name (Euler a, DPM++ 2M Karras, DPM++ 2M SDE, UniPC, LMS, DPM2 a, PLMS,
                         DDIM, DDPM, DEIS, Heun, LCM, ...) or a diffusers class name
  --karras               Karras sigmas
  --seed N               seed (default random; sample i uses seed + i)
  --width N --height N   size (default: the model's)
  --guidance X           classifier-free guidance scale
  --samples N            1 to 4 images
  --init-image FILE      img2img / inpaint source
  --strength X           img2img strength 0..1 (default 0.75)
  --mask FILE            inpaint mask, white = repaint
  --clip-skip N          A1111 clip skip (1 = last layer)
  --clip-vocab FILE      CLIP vocabulary for single-file checkpoints
  --device cpu|cuda  --precision fp32|bf16  --threads N
  --out FILE             output PNG (default easel.png; several samples get -0, -1, ...)

Plans: free (20 images, 1 fine-tune), basic, standard, premium. The admin commands work while the server runs.
Endpoints: see README.md and server/openapi.json; GET /health answers 200 once the server is ready.
)";

}  // namespace

int main(int argc, char** argv) {
    easel::inference::restartWithoutSlowBlasCoreType(argv);
    using namespace easel;
    try {
        const app::ArgList args(argc, argv);
        if (args.has("--help") || args.has("-h")) {
            std::cout << kUsage;
            return EXIT_SUCCESS;
        }
        if (args.has("--version")) {
            std::cout << "easel-server " << EASEL_VERSION << '\n';
            return EXIT_SUCCESS;
        }
        if (!args.raw().empty() && args.raw().front() == "generate") return app::runGenerate(args, argv[0]);
        if (!args.raw().empty() && args.raw().front() == "openapi") {
            // The API description, from the same route table the server serves.
            struct NoModel final : jobs::ImageGenerator {
                std::vector<jobs::ModelDescription> models() const override { return {}; }
                std::optional<jobs::ModelDescription> defaultModel() const override { return std::nullopt; }
                jobs::GeneratedImages generate(const jobs::GenerationParams&, const jobs::Bytes*, const jobs::Bytes*,
                                               const jobs::ProgressCallback&) override {
                    return {};
                }
                jobs::ModelDescription addModel(const std::string&, const std::filesystem::path&,
                                                std::int64_t) override {
                    throw std::runtime_error("no models here");
                }
                bool removeModel(const std::string&) override { return false; }
            } none;
            app::BackendConfig config;
            config.dataDir = std::filesystem::temp_directory_path() / ("easel-openapi-" + std::to_string(::getpid()));
            {
                app::Backend backend(config, none);
                std::cout << server::openApiDocument(backend.makeRouter(EASEL_VERSION, "cpu"), EASEL_VERSION).dump(2)
                          << '\n';
            }
            std::filesystem::remove_all(config.dataDir);
            return EXIT_SUCCESS;
        }
        if (!args.raw().empty() && args.raw().front() == "admin") {
            const std::string verb = argc > 2 ? argv[2] : "";
            return app::runAdmin(verb, app::ArgList(std::max(0, argc - 2), argv + std::min(argc, 2)));
        }
        args.rejectUnknown({"--listen", "--data-dir", "--database", "--blob-store", "--lease-seconds", "--role",
                            "--model", "--public-url", "--retention-days", "--inactive-days", "--sync-wait",
                            "--hub-url", "--model-memory-gb", "--min-free-disk-mb", "--job-time-limit",
                            "--training-checkpoint-seconds", "--max-connections", "--trusted-proxy", "--access-log"},
                           {"--closed-signup", "--allow-private-downloads", "--allow-private-image-urls"});

        server::HttpServerOptions options;
        const auto [host, port] = app::parseListen(args.value("--listen").value_or("127.0.0.1:7860"));
        options.address = host;
        options.port = port;
        options.workerThreads = 16;  // handlers may wait for a job (--sync-wait); keep room for others
        options.maxConnections = static_cast<std::size_t>(std::max(1, args.intValue("--max-connections", 1024)));
        const auto accessLog = args.value("--access-log").value_or("json");
        if (accessLog != "json" && accessLog != "off") throw app::UsageError("--access-log takes json or off");
        if (accessLog == "json") {
            options.log = [mutex = std::make_shared<std::mutex>()](const std::string& line) {
                std::lock_guard lock(*mutex);
                std::cerr << line << '\n';
            };
        }
        try {
            options.trustedProxies = server::parseCidrList(args.value("--trusted-proxy").value_or(""));
        } catch (const std::invalid_argument& e) {
            throw app::UsageError(std::string("--trusted-proxy: ") + e.what());
        }
        app::BackendConfig config;
        config.dataDir = args.value("--data-dir").value_or("easel-data");
        config.database = app::databaseOption(args);
        config.blobStore = app::blobStoreOption(args);
        config.runner.leaseSeconds = args.intValue("--lease-seconds", 60);
        if (config.runner.leaseSeconds < 1) throw app::UsageError("--lease-seconds must be at least 1");
        config.accounts.openSignup = !args.has("--closed-signup");
        config.accounts.inactiveFreeDays = args.intValue("--inactive-days", 365);
        config.runner.retentionSeconds = std::int64_t{args.intValue("--retention-days", 30)} * 24 * 3600;
        config.runner.maxJobSeconds = std::max(0, args.intValue("--job-time-limit", 1800));
        config.generation.syncWait =
            std::chrono::milliseconds(static_cast<std::int64_t>(args.floatValue("--sync-wait", 15.0f) * 1000.0f));
        config.publicUrl = args.value("--public-url").value_or("");
        config.generation.minFreeDiskBytes =
            static_cast<std::uint64_t>(std::max(0, args.intValue("--min-free-disk-mb", 512))) << 20;
        const char* hfEndpoint = std::getenv("HF_ENDPOINT");
        config.hubUrl = args.value("--hub-url").value_or(hfEndpoint != nullptr ? hfEndpoint : "https://huggingface.co");
        config.allowPrivateDownloads = args.has("--allow-private-downloads");
        config.allowPrivateImageUrls = args.has("--allow-private-image-urls");
        const auto memoryBudget =
            static_cast<std::uint64_t>(std::max(1.0f, args.floatValue("--model-memory-gb", 8.0f)) * (1u << 30));
        if (config.runner.retentionSeconds <= 0) throw app::UsageError("--retention-days must be at least 1");

        const auto role = args.value("--role").value_or("all");
        if (role != "all" && role != "api" && role != "worker")
            throw app::UsageError("--role takes all, api or worker");
        if (role != "all" && config.database.empty()) {
            throw app::UsageError("--role " + role + " needs --database: the roles share a PostgreSQL queue");
        }
        if (role == "api") config.runner.workers = 0;  // jobs run on the workers

        // An API server loads no model: it lists and validates against what live workers advertise.
        std::optional<inference::Engine> engine;
        std::optional<models::ModelRegistry> registry;
        std::optional<storage::Database> catalogDb;
        std::optional<jobs::ModelCatalog> catalog;
        SystemClock systemClock;
        if (role == "api") {
            catalogDb.emplace(std::filesystem::path(config.database));
            catalog.emplace(*catalogDb, systemClock, 3 * config.runner.leaseSeconds);
        } else {
            engine.emplace();
            app::loadDefaultModel(*engine, args, argv[0]);
            registry.emplace(*engine, inference::EngineOptions{}, memoryBudget);
            registry->addInstalled(config.dataDir / "models");
            const float checkpointSeconds = args.floatValue("--training-checkpoint-seconds", 120.0f);
            if (!(checkpointSeconds >= 1.0f)) throw app::UsageError("--training-checkpoint-seconds must be at least 1");
            registry->setTrainingCheckpointSeconds(checkpointSeconds);
        }
        jobs::ImageGenerator& generator = registry ? static_cast<jobs::ImageGenerator&>(*registry) : *catalog;
        // The registry fine-tunes too; an API server queues fine-tunes for the workers (their inputs and
        // the trained models go through the shared blob store).
        app::Backend backend(config, generator, registry ? &*registry : nullptr);
        backend.start();
        const auto device = role == "api" ? std::string("none (API only)") : inference::runtimeInfo().describe();
        server::HttpServer httpServer(options, role == "worker" ? backend.makeWorkerRouter(EASEL_VERSION, device)
                                                                : backend.makeRouter(EASEL_VERSION, device));
        httpServer.start();
        backend.setPublicUrl("http://" + host + ":" + std::to_string(httpServer.port()));
        std::cout << "easel-server " << EASEL_VERSION << " listening on http://" << host << ':' << httpServer.port()
                  << " (data dir " << std::filesystem::absolute(config.dataDir).string()
                  << (config.database.empty() ? "" : ", database " + storage::Database::describe(config.database))
                  << (config.blobStore.empty() ? "" : ", blobs in " + backend.platform().blobs().describe())
                  << (role == "all" ? "" : ", role " + role) << ")" << std::endl;
        httpServer.runUntilSignalled([&backend] { backend.beginShutdown(); });
        backend.stop();
        std::cout << "easel-server stopped" << std::endl;
        return EXIT_SUCCESS;
    } catch (const app::UsageError& e) {
        std::cerr << "easel-server: " << e.what() << "\nTry 'easel-server --help'.\n";
        return 2;
    } catch (const ServiceError& e) {
        std::cerr << "easel-server: " << e.what() << '\n';
        return EXIT_FAILURE;
    } catch (const std::exception& e) {
        std::cerr << "easel-server: " << e.what() << '\n';
        return EXIT_FAILURE;
    }
}
