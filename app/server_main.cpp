// easel-server: the headless REST backend. Composition root only: parse arguments, wire objects, run.

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include "app_args.h"
#include "backend_setup.h"
#include "generate_command.h"
#include "http_server.h"

namespace {

constexpr std::string_view kUsage = R"(Usage: easel-server [options]
       easel-server generate --prompt TEXT [generate options]

The Easel REST backend: Stable Diffusion generation behind accounts, API keys and quotas.

Options:
  --listen HOST:PORT   address to bind (default 127.0.0.1:7860)
  --data-dir DIR       where the database, images and models live (default ./easel-data)
  --model PATH         default model (default: the built-in model, easel-shapes-64)
  --version            print the version and exit
  -h, --help           print this help and exit

Generate options (one-shot, writes PNGs with the A1111 "parameters" chunk):
  --model PATH           model folder (model.json) or SD 1.x/2.x .safetensors (default: the built-in model)
  --prompt TEXT          what to draw (A1111 weighting: (word), (word:1.3), [word])
  --negative-prompt TEXT what to avoid
  --steps N              sampling steps (default: the model's)
  --sampler NAME         Euler, Euler a, DDIM, DPM++ 2M, DPM++ 2M Karras, LCM or a diffusers class name
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

Endpoints:
  GET /health          200 {"status":"ok"} once the server accepts requests
)";

}  // namespace

int main(int argc, char** argv) {
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
        args.rejectUnknown({"--listen", "--data-dir", "--model"}, {});

        server::HttpServerOptions options;
        const auto [host, port] = app::parseListen(args.value("--listen").value_or("127.0.0.1:7860"));
        options.address = host;
        options.port = port;
        const std::filesystem::path dataDir = args.value("--data-dir").value_or("easel-data");
        std::filesystem::create_directories(dataDir);

        inference::Engine engine;
        const auto modelName = app::loadDefaultModel(engine, args, argv[0]);
        server::HttpServer httpServer(options, app::makeRouter(modelName));
        httpServer.start();
        std::cout << "easel-server " << EASEL_VERSION << " listening on http://" << host << ':' << httpServer.port()
                  << " (data dir " << std::filesystem::absolute(dataDir).string() << ")" << std::endl;
        httpServer.runUntilSignalled();
        std::cout << "easel-server stopped" << std::endl;
        return EXIT_SUCCESS;
    } catch (const app::UsageError& e) {
        std::cerr << "easel-server: " << e.what() << "\nTry 'easel-server --help'.\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "easel-server: " << e.what() << '\n';
        return EXIT_FAILURE;
    }
}
