#!/usr/bin/env bash
# Builds llama.cpp's own native `llama-server` (parallel slots + continuous batching) and installs it as
# .venv-llm/bin/llama-server. Optional: only benchmarks/bench_population_llm.py uses it; tests and CI do not.
# The source is the llama.cpp copy vendored in the llama-cpp-python sdist on PyPI (this machine reaches PyPI
# but not GitHub), the same version scripts/setup_llm_server.sh installs, so both servers share one llama.cpp.
# The web UI is not built and no prebuilt UI is downloaded (LLAMA_BUILD_UI=OFF, LLAMA_USE_PREBUILT_UI=OFF);
# no HTTPS (LLAMA_OPENSSL=OFF). Static binary (BUILD_SHARED_LIBS=OFF), tuned for this CPU (GGML_NATIVE=ON).
# Idempotent: does nothing when .venv-llm/bin/llama-server already runs. First build ~14 min on 2 cores (810 s measured 2026-12-04 at load ~3).
# Usage: bash scripts/setup_llama_server.sh   (needs .venv-llm from scripts/setup_llm_server.sh for the model)
#   Then: .venv-llm/bin/llama-server --model "$(bash scripts/setup_llm_server.sh --model-path)" --parallel 16
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-llm
BIN="$VENV/bin/llama-server"
LLAMA_CPP_VERSION=0.3.36
WORK="${LLAMA_SERVER_BUILD_DIR:-/tmp/llama-server-build-$LLAMA_CPP_VERSION}"
JOBS="${JOBS:-2}"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "setup_llama_server: $BIN already built: $("$BIN" --version 2>&1 | head -1)"
  exit 0
fi

command -v cmake >/dev/null || { echo "setup_llama_server: cmake is missing (apt-get install -y cmake, or pip install cmake)" >&2; exit 1; }
command -v g++ >/dev/null || command -v c++ >/dev/null || { echo "setup_llama_server: a C++ compiler is missing (apt-get install -y build-essential)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || { echo "setup_llama_server: $VENV is missing; run scripts/setup_llm_server.sh first" >&2; exit 1; }

mkdir -p "$WORK"
SRC="$WORK/llama_cpp_python-$LLAMA_CPP_VERSION/vendor/llama.cpp"
if [ ! -f "$SRC/tools/server/CMakeLists.txt" ]; then
  echo "setup_llama_server: downloading the llama-cpp-python==$LLAMA_CPP_VERSION sdist from PyPI"
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps \
    -d "$WORK" "llama-cpp-python==$LLAMA_CPP_VERSION"
  tar -xzf "$WORK/llama_cpp_python-$LLAMA_CPP_VERSION.tar.gz" -C "$WORK"
fi

echo "setup_llama_server: building llama-server from $SRC with $JOBS jobs"
start=$(date +%s)
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S "$SRC" -B "$WORK/build" "${GEN[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF
cmake --build "$WORK/build" --target llama-server -j "$JOBS"
install -m 755 "$WORK/build/bin/llama-server" "$BIN"
echo "setup_llama_server: built in $(( $(date +%s) - start )) s; installed $BIN: $("$BIN" --version 2>&1 | head -1)"
