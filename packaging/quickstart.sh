#!/usr/bin/env bash
# The README's two quick-start commands:
#   bash packaging/quickstart.sh run    set everything up, build, and start Easel
#                                       (the desktop app where there is a display, else easel-server)
#   bash packaging/quickstart.sh test   set everything up, build, and run every test (ctest)
# Both are idempotent and incremental: a second run rebuilds only what changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:-}
case "$mode" in run|test) ;; *) echo "usage: $0 run|test" >&2; exit 2 ;; esac

say() { echo "[easel $mode] $*"; }

say "1/3 dependencies"
bash packaging/setup-deps.sh

say "2/3 configure + build (preset ci, build/ci)"
if [ ! -f build/ci/build.ninja ]; then cmake --preset ci >/dev/null; fi
# Two cores and ~2-4 GB per libtorch translation unit: two jobs fit in 24 GiB.
cmake --build --preset ci -j "$(nproc)"

if [ "$mode" = test ]; then
  say "3/3 tests"
  exec ctest --preset ci -j "$(nproc)"
fi

say "3/3 start"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  say "display found: starting the desktop app (build/ci/app/easel)"
  exec build/ci/app/easel "${@:2}"
fi
say "no display: starting easel-server on http://127.0.0.1:7860 (Ctrl+C stops it)"
exec build/ci/app/easel-server --listen 127.0.0.1:7860 --data-dir "${EASEL_DATA_DIR:-$HOME/.local/share/easel}" "${@:2}"
