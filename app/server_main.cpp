// easel-server: the headless REST backend. Composition root only: parse arguments, wire objects, run.

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include "app_args.h"
#include "health_controller.h"
#include "http_server.h"
#include "inference/runtime_info.h"

namespace {

constexpr std::string_view kUsage = R"(Usage: easel-server [options]

The Easel REST backend: Stable Diffusion generation behind accounts, API keys and quotas.

Options:
  --listen HOST:PORT   address to bind (default 127.0.0.1:7860)
  --data-dir DIR       where the database, images and models live (default ./easel-data)
  --version            print the version and exit
  -h, --help           print this help and exit

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
        args.rejectUnknown({"--listen", "--data-dir"}, {});

        server::HttpServerOptions options;
        const auto [host, port] = app::parseListen(args.value("--listen").value_or("127.0.0.1:7860"));
        options.address = host;
        options.port = port;
        const std::filesystem::path dataDir = args.value("--data-dir").value_or("easel-data");
        std::filesystem::create_directories(dataDir);

        server::Router router;
        server::registerHealthRoutes(router, {EASEL_VERSION, inference::runtimeInfo().describe()});

        server::HttpServer httpServer(options, std::move(router));
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
