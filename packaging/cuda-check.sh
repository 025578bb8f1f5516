#!/usr/bin/env bash
# Proves the CUDA path of the inference core on a GPU machine: builds tests/cuda (the CUDA parity
# tests plus the CPU parity tests they mirror) against the libtorch of the machine's PyTorch and runs
# them against the reference vectors. Run from the repository root:
#
#   packaging/cuda-check.sh            # on the GPU machine; the log goes to $OUT/ when OUT is set
#   packaging/cuda-check.sh --prepare  # here: fill the ignored .cudadeps/ that travels with it
#
# .cudadeps/ holds what the GPU machine lacks: nlohmann-json headers (include/), googletest sources
# (googletest/) and the reference files the tests read (reference/).
set -euo pipefail

ROOT=$(pwd)
DEPS=$ROOT/.cudadeps
BUILD=${EASEL_CUDA_BUILD:-/tmp/cudabuild}
LOG=${EASEL_CUDA_LOG:-/tmp/cuda-check.log}
START=$(date +%s)

phase() { echo "=== [$(date +%H:%M:%S) +$(($(date +%s) - START))s] $*"; }

if [[ ${1:-} == --prepare ]]; then
    REF=${EASEL_REFERENCE_DIR:-$ROOT/tests/data/reference}
    rm -rf "$DEPS"
    mkdir -p "$DEPS/include" "$DEPS/reference"
    cp -r /usr/include/nlohmann "$DEPS/include/"
    cp -r /usr/src/googletest "$DEPS/googletest"
    for f in config.json scheduler_reference.json tiny_sd_checkpoint.safetensors tiny_sd2_checkpoint.safetensors \
        tiny_sd_inpainting_checkpoint.safetensors text_encoder_vectors.safetensors unet_vectors.safetensors \
        vae_vectors.safetensors sd2_text_encoder_vectors.safetensors sd2_unet_vectors.safetensors \
        sd2_vae_vectors.safetensors inpaint_unet_vectors.safetensors pipeline_vectors.safetensors; do
        cp "$REF/$f" "$DEPS/reference/"
    done
    du -sh "$DEPS"
    exit 0
fi

[[ -d $DEPS/reference && -d $DEPS/googletest && -d $DEPS/include/nlohmann ]] ||
    { echo "missing $DEPS (run packaging/cuda-check.sh --prepare, and carry .cudadeps)" >&2; exit 2; }

main() {
    phase "machine"
    nvidia-smi -L || echo "nvidia-smi failed"
    echo "cores: $(nproc)"
    g++ --version | head -1
    cmake --version | head -1
    if command -v nvcc >/dev/null; then nvcc --version | tail -1; else echo "no nvcc on PATH"; fi
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
    local prefix torchDir abi
    prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
    torchDir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
    abi=$(python3 -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')

    # Torch's CMake package first. Where it cannot configure, or its link line fails (it wants a
    # matching CUDA toolkit and cuDNN), the package's libraries directly: the tests include no CUDA
    # headers. A compile error in our own sources is a finding, not a setup problem: no retry then.
    local gen=(-G Ninja) cuda=() buildLog=/tmp/cuda-check-build.log
    command -v ninja >/dev/null || gen=()
    if command -v nvcc >/dev/null; then cuda=(-DCMAKE_CUDA_COMPILER="$(command -v nvcc)"); fi
    export TORCH_CUDA_ARCH_LIST=9.0
    phase "configure (Torch's CMake package from $prefix)"
    rm -rf "$BUILD"
    local ok=0
    if cmake -S tests/cuda -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
        "${cuda[@]}"; then
        phase "build ($(nproc) jobs)"
        if cmake --build "$BUILD" --parallel "$(nproc)" 2>&1 | tee "$buildLog"; then
            ok=1
        elif grep -q "^$ROOT/.*error:" "$buildLog"; then
            echo "compile errors in Easel's sources (above)"
            return 1
        fi
    fi
    if [[ $ok == 0 ]]; then
        phase "falling back: libtorch from $torchDir directly (C++11 ABI $abi)"
        rm -rf "$BUILD"
        cmake -S tests/cuda -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DEASEL_TORCH_ROOT="$torchDir" \
            -DEASEL_TORCH_CXX11_ABI="$abi"
        phase "build ($(nproc) jobs)"
        cmake --build "$BUILD" --parallel "$(nproc)"
    fi

    phase "test"
    EASEL_REFERENCE_DIR=$DEPS/reference EASEL_REQUIRE_CUDA=1 timeout 300 "$BUILD/easel_cuda_tests" --gtest_color=no
}

# The log is written as it goes, and copied to $OUT/ whatever happens.
set +e
(
    set -euo pipefail
    main
) 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
phase "done: exit status $status" | tee -a "$LOG"
if [[ -n ${OUT:-} ]]; then cp "$LOG" "$OUT/"; fi
exit "$status"
