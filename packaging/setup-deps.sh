#!/usr/bin/env bash
# Installs, from Debian 12's own archive, exactly the packages Easel needs that are missing.
# Idempotent: a second run installs nothing and takes a second. Runs as root without prompts
# (or through sudo when started as a normal user).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang-format git
  # inference core
  libtorch-dev libopenblas0-openmp libjemalloc-dev libjemalloc2 libopencv-dev zlib1g-dev libicu-dev
  # storage, secrets, HTTP
  libsqlite3-dev libpq-dev libsodium-dev libboost1.74-dev nlohmann-json3-dev libssl-dev
  # desktop app
  qt6-base-dev qt6-base-dev-tools libgl-dev
  # tests
  libgtest-dev libgmock-dev xvfb xauth python3 python3-requests
  # the storage tests' throwaway PostgreSQL server (initdb + postgres in a temp folder; no service)
  postgresql
  # the Debian package's checks (packaging/deb_install_test.sh)
  lintian desktop-file-utils appstream
)

# The OpenAI client test runs the official `openai` npm package: Node.js from Debian unless the machine
# already has a node and npm of its own.
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then packages+=(nodejs npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "[easel setup] all ${#packages[@]} Debian packages already installed"
else
  echo "[easel setup] installing ${#missing[@]} missing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# libtorch uses whatever libblas.so.3 points to: make sure it is OpenBLAS (OpenMP build), not the
# ~10x slower reference BLAS.
blas_target=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas_target" in
  *openblas*) echo "[easel setup] BLAS: $blas_target" ;;
  *)
    echo "[easel setup] pointing libblas.so.3 at OpenBLAS (was: ${blas_target:-none})"
    for alt in /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3; do
      [ -e "$alt" ] && ${SUDO:-} update-alternatives --set libblas.so.3-x86_64-linux-gnu "$alt" || true
    done
    ;;
esac

# The npm packages of the tests, exactly as each package-lock.json pins them (from the npm registry,
# once; again only when a lock file changes): the official `openai` client, and s3rver, the
# S3-compatible server that the blob-store tests start on loopback.
root="$(cd "$(dirname "$0")/.." && pwd)"
for dir in "$root/tests/clients/openai" "$root/tests/support/s3rver"; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "[easel setup] npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "[easel setup] npm packages in ${dir#"$root"/} already installed"
  fi
done
