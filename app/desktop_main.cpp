// easel: the desktop playground. Composition root only: start the bundled backend on a loopback
// port, then open the window, which talks to that backend over HTTP like any other client.

#include <QApplication>
#include <QTimer>
#include <QUrl>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string_view>

#include "app/app_args.h"
#include "app/backend.h"
#include "app/backend_setup.h"
#include "inference/runtime_info.h"
#include "models/model_registry.h"
#include "server/http_server.h"
#include "ui/api_client.h"
#include "ui/app_icon.h"
#include "ui/dialog_presenter.h"
#include "ui/main_window.h"

namespace {

constexpr std::string_view kUsage = R"(Usage: easel [options]

The Easel desktop playground. Starts a bundled Easel backend on a loopback port and opens the window
(local mode), or connects to a running Easel server and asks you to sign in (remote mode).

Options:
  --server URL     remote mode: use the Easel server at URL, start no backend (the last server and
                   email signed in to are remembered)
  --data-dir DIR   where the bundled backend keeps its state (default ./easel-data)
  --model PATH     default model (default: the built-in model)
  --version        print the version and exit
  -h, --help       print this help and exit
)";

// Remote mode: no backend and no model here; the window opens on the sign-in dialog.
int runRemote(const QUrl& server) {
    using namespace easel;
    ui::ApiClient client(server);
    ui::MessageBoxPresenter dialogs;
    ui::MainWindow window(&client, &dialogs);
    window.show();
    QTimer::singleShot(0, &window, [&window] { window.signIn(); });
    return QApplication::exec();
}

}  // namespace

int main(int argc, char** argv) {
    easel::inference::restartWithoutSlowBlasCoreType(argv);
    using namespace easel;
    // --help must work without a display, so it is handled before QApplication exists.
    try {
        const app::ArgList args(argc, argv);
        if (args.has("--help") || args.has("-h")) {
            std::cout << kUsage;
            return EXIT_SUCCESS;
        }
        if (args.has("--version")) {
            std::cout << "easel " << EASEL_VERSION << '\n';
            return EXIT_SUCCESS;
        }
        args.rejectUnknown({"--data-dir", "--model", "--server"}, {});
        if (const auto server = args.value("--server")) {
            const QUrl url(QString::fromStdString(*server), QUrl::StrictMode);
            if (!url.isValid() || (url.scheme() != QLatin1String("http") && url.scheme() != QLatin1String("https")) ||
                url.host().isEmpty())
                throw app::UsageError("--server wants an http:// or https:// address, not '" + *server + "'");
            if (args.value("--data-dir") || args.value("--model"))
                throw app::UsageError("--data-dir and --model are for the bundled backend, not with --server");
        }
    } catch (const app::UsageError& e) {
        std::cerr << "easel: " << e.what() << "\nTry 'easel --help'.\n";
        return 2;
    }

    QApplication application(argc, argv);
    QApplication::setApplicationName(QStringLiteral("Easel"));
    QApplication::setOrganizationName(QStringLiteral("Easel"));
    QApplication::setWindowIcon(ui::appIcon());
    QGuiApplication::setDesktopFileName(QStringLiteral("easel"));  // packaging/easel.desktop

    const app::ArgList args(argc, argv);
    if (const auto server = args.value("--server")) return runRemote(QUrl(QString::fromStdString(*server)));
    inference::Engine engine;
    app::loadDefaultModel(engine, args, argv[0]);
    models::ModelRegistry generator(engine);
    app::BackendConfig config;
    config.dataDir = args.value("--data-dir").value_or("easel-data");
    // Models installed and fine-tuned in earlier sessions.
    generator.addInstalled(config.dataDir / "models");
    std::unique_ptr<app::Backend> backend;
    server::HttpServerOptions options;
    options.port = 0;  // any free loopback port
    options.workerThreads = 8;
    std::unique_ptr<server::HttpServer> http;
    try {
        backend = std::make_unique<app::Backend>(config, generator, &generator);  // the registry fine-tunes too
        backend->start();
        http = std::make_unique<server::HttpServer>(
            options, backend->makeRouter(EASEL_VERSION, inference::runtimeInfo().describe()));
        http->start();
    } catch (const std::exception& e) {
        std::cerr << "easel: cannot start the bundled backend: " << e.what() << '\n';
        return EXIT_FAILURE;
    }

    ui::ApiClient client(QUrl(QStringLiteral("http://127.0.0.1:%1").arg(http->port())));
    ui::MessageBoxPresenter dialogs;
    ui::MainWindow window(&client, &dialogs);
    window.setBundledServer(client.baseUrl());
    try {
        // Local mode: the bundled backend's owner account, created on the first launch.
        const auto owner = service::ensureDesktopOwner(backend->accounts(), config.dataDir);
        client.setSessionToken(QString::fromStdString(owner.sessionToken));
        client.setApiKey(QString::fromStdString(owner.apiKey));
    } catch (const std::exception& e) {
        std::cerr << "easel: cannot open the local account: " << e.what() << '\n';
    }
    window.show();
    window.reloadFromServer();
    return application.exec();
}
