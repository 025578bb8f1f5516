#!/usr/bin/env bash
# Builds the Debian package from the quick start's build (preset ci; binaries stripped when packed) and
# checks it with lintian:   bash packaging/build-deb.sh   ->   build/ci/deb/easel_<version>_amd64.deb
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash packaging/setup-deps.sh
if [ ! -f build/ci/build.ninja ]; then cmake --preset ci >/dev/null; fi
cmake --build --preset ci -j "$(nproc)" --target easel easel-server easel_package_docs
(cd build/ci && cpack --config CPackConfig.cmake)
deb=$(ls -t build/ci/deb/easel_*_amd64.deb | head -n1)
echo "[easel deb] $deb"
if command -v lintian >/dev/null 2>&1; then
  lintian --fail-on error,warning "$deb"
  echo "[easel deb] lintian: no errors or warnings"
fi
