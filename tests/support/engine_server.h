#pragma once
// easel-server as it runs, in-process: an Engine behind the model registry, the backend, and HTTP on an
// ephemeral loopback port. `EngineT` is the Engine to serve (loaded in its constructor, before the
// registry, backend and router that describe it are made), or a plain inference::Engine for a server
// without a default model.

#include "app/backend.h"
#include "inference/engine.h"
#include "models/model_registry.h"
#include "server/http_server.h"
#include "temp_dir.h"

namespace easel::testing {

template <typename EngineT = inference::Engine>
struct EngineServer {
    EngineServer() {
        backend.start();
        http.start();
    }
    ~EngineServer() {
        http.stop();
        backend.stop();
    }
    static app::BackendConfig configIn(const TempDir& dir) {
        app::BackendConfig config;
        config.dataDir = dir.path() / "data";
        config.passwordCost = accounts::PasswordCost::fastForTests();
        config.allowPrivateImageUrls = true;  // tests serve their pictures on loopback
        return config;
    }
    static server::HttpServerOptions ephemeralPort() {
        server::HttpServerOptions o;
        o.port = 0;
        return o;
    }

    TempDir dir;
    EngineT engine;
    models::ModelRegistry generator{engine};
    app::Backend backend{configIn(dir), generator, &generator};  // the registry also fine-tunes
    server::HttpServer http{ephemeralPort(), backend.makeRouter("test", "cpu")};
};

}  // namespace easel::testing
