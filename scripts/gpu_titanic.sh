#!/usr/bin/env bash
# Loader smoke + Titanic on a lent GPU machine (one H100/H200, 16 cores, no network at all).
#
# The GPU machine has python3.12 with torch/CUDA but no llama_cpp, no Django stack and maybe no
# redis-server, and it cannot download anything. So the dev machine packs everything into
# var/gpu/ (git-ignored), in parts small enough for one device call each (the device tool carries
# at most 64 MiB of ignored paths per call), and the GPU machine unpacks, builds llama-cpp-python
# with CUDA for Hopper (~280 s on 16 cores) and runs the checks. See ../shared/notes/gpu.md.
#
# On the dev machine (has PyPI):
#   bash scripts/gpu_titanic.sh pack            # -> var/gpu/part1 .. var/gpu/partN (<= 60 MB each)
# Then one device call per part (the device keeps ignored files between calls while it stays warm):
#   run(carry=["var/gpu/part1"], command="bash scripts/gpu_titanic.sh receive part1")
#   run(carry=["var/gpu/part2"], command="bash scripts/gpu_titanic.sh receive part2")  ... every part
#   run(command="bash scripts/gpu_titanic.sh setup")     # venv, wheels, CUDA build of llama-cpp-python, model
#   run(command="bash scripts/gpu_titanic.sh run")       # loader smoke + full Titanic -> $OUT/
# (`run MICRO=1` for the 40-item slice.) Reports land in $OUT (and reports/ on the device).
#
# Untested end to end until a task is lent a GPU machine: the pieces follow the notes' measured recipe.
set -euo pipefail
cd "$(dirname "$0")/.."

GPU_DIR=var/gpu
STAGE=var/gpu-stage            # on the device: the received parts, reassembled
GPU_VENV=var/gpu-venv
LLAMA_VERSION=0.3.36
PYVER=3.12
MODEL=var/models/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PART_BYTES=60000000

pack() {
    local py=${PYTHON:-.venv/bin/python}
    rm -rf "$GPU_DIR" && mkdir -p "$GPU_DIR/bundle/wheels" "$GPU_DIR/bundle/redis"
    # Wheels for the device's Python (3.12, manylinux x86_64), everything the stack needs except
    # llama-cpp-python (built there from source) and torch (already there).
    grep -v -E '^\s*(#|-r|llama-cpp-python)' requirements/base.txt | sed 's/#.*//' | grep -v '^\s*$' \
        > "$GPU_DIR/bundle/requirements-gpu.txt"
    printf '%s\n' psutil==7.2.2 requests locust==2.47.0 'uvicorn>=0.22' 'fastapi>=0.100' 'sse-starlette>=1.6.1' \
        'starlette-context>=0.3.6' 'pydantic-settings>=2.0.1' 'diskcache>=5.6.1' 'jinja2>=2.11.3' \
        'typing-extensions>=4.5.0' 'numpy>=1.20.0' 'scikit-build-core>=0.9.2' >> "$GPU_DIR/bundle/requirements-gpu.txt"
    "$py" -m pip download -q --only-binary=:all: --python-version "$PYVER" --implementation cp \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        --platform linux_x86_64 --platform any -d "$GPU_DIR/bundle/wheels" -r "$GPU_DIR/bundle/requirements-gpu.txt"
    # llama-cpp-python sdist, pruned as in the notes (76 MB -> ~13 MB).
    local tmp; tmp=$(mktemp -d)
    "$py" -m pip download -q --no-binary=:all: --no-deps -d "$tmp" "llama-cpp-python==$LLAMA_VERSION"
    tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
    local src; src=$(find "$tmp" -maxdepth 1 -type d -name 'llama_cpp_python-*' | head -1)
    rm -rf "$src/.git" "$src"/vendor/llama.cpp/models/*.gguf "$src/vendor/llama.cpp/docs"
    tar -czf "$GPU_DIR/bundle/llama-cpp-python.tar.gz" -C "$tmp" "$(basename "$src")"
    rm -rf "$tmp"
    # redis-server and the libraries a minimal image may lack (used only when the device has none).
    cp -L "$(command -v redis-server)" "$GPU_DIR/bundle/redis/redis-server"
    for lib in liblzf.so.1 libjemalloc.so.2; do
        cp -L "/lib/x86_64-linux-gnu/$lib" "$GPU_DIR/bundle/redis/" 2>/dev/null || true
    done
    cp "$MODEL" "$GPU_DIR/bundle/model.gguf"
    # One tarball split into parts of at most PART_BYTES.
    tar -cf "$GPU_DIR/bundle.tar" -C "$GPU_DIR" bundle && rm -rf "$GPU_DIR/bundle"
    (cd "$GPU_DIR" && sha256sum bundle.tar > bundle.sha256 && split -b "$PART_BYTES" -d -a 1 bundle.tar chunk.)
    local i=1
    for chunk in "$GPU_DIR"/chunk.*; do
        mkdir -p "$GPU_DIR/part$i" && mv "$chunk" "$GPU_DIR/part$i/"
        cp "$GPU_DIR/bundle.sha256" "$GPU_DIR/part$i/"
        i=$((i + 1))
    done
    rm -f "$GPU_DIR/bundle.tar"
    du -sh "$GPU_DIR"/part*
    echo "now one device call per part: carry=[\"$GPU_DIR/partN\"], command=\"bash scripts/gpu_titanic.sh receive partN\""
}

receive() {
    local part=${1:?usage: receive partN}
    mkdir -p "$STAGE"
    cp "$GPU_DIR/$part"/chunk.* "$GPU_DIR/$part/bundle.sha256" "$STAGE/"
    ls -la "$STAGE"
}

setup() {
    [ -f "$STAGE/bundle.sha256" ] || { echo "no parts received in $STAGE" >&2; exit 1; }
    (cd "$STAGE" && cat chunk.* > bundle.tar && sha256sum -c bundle.sha256 && tar -xf bundle.tar && rm -f bundle.tar)
    local b=$STAGE/bundle
    mkdir -p var/models
    mv "$b/model.gguf" "$MODEL"
    echo "$MODEL_SHA256  $MODEL" | sha256sum -c -
    # The device's python3 keeps its torch; the venv sees it (system site packages) and adds ours.
    python3 -m venv --system-site-packages "$GPU_VENV"
    "$GPU_VENV/bin/python" -m pip install -q --no-index --find-links "$b/wheels" -r "$b/requirements-gpu.txt"
    tar -xzf "$b/llama-cpp-python.tar.gz" -C "$STAGE"
    local src; src=$(find "$STAGE" -maxdepth 1 -type d -name 'llama_cpp_python-*' | head -1)
    CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF" \
        CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) PATH="/usr/local/cuda/bin:$PATH" \
        "$GPU_VENV/bin/python" -m pip install --no-build-isolation --no-deps --no-index "$src"
    "$GPU_VENV/bin/python" -c "import llama_cpp; assert llama_cpp.llama_supports_gpu_offload(), 'no CUDA offload'; print('llama_cpp', llama_cpp.__version__, 'CUDA offload ok')"
    if ! command -v redis-server >/dev/null; then
        mkdir -p "$GPU_VENV/redis" && cp "$b/redis/"* "$GPU_VENV/redis/" && chmod +x "$GPU_VENV/redis/redis-server"
    fi
}

run_checks() {
    local py=$GPU_VENV/bin/python out=${OUT:-reports}
    [ -x "$py" ] || { echo "run setup first" >&2; exit 1; }
    if ! command -v redis-server >/dev/null; then
        export PATH="$PWD/$GPU_VENV/redis:$PATH" LD_LIBRARY_PATH="$PWD/$GPU_VENV/redis:${LD_LIBRARY_PATH:-}"
    fi
    mkdir -p "$out" reports
    nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv | tee "$out/gpu_info.csv"
    "$py" bench/gate.py --stages loader-smoke --out "$out/gate_loader_smoke.json" | tee "$out/loader_smoke.txt"
    local slice=()
    [ "${MICRO:-0}" = 1 ] && slice=(--micro)
    "$py" -m bench.titanic --budget "${BUDGET:-0.10}" "${slice[@]}" --out "$out/titanic_gpu.json" | tee "$out/titanic.txt"
}

case "${1:-}" in
    pack) pack ;;
    receive) receive "${2:-}" ;;
    setup) setup ;;
    run) shift; for kv in "$@"; do export "${kv?}"; done; run_checks ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
esac
