#!/usr/bin/env bash
# Builds the wasm core and the Node entries of the package (js/dist). Incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's emcc runs its optimiser under the system node, which does not search /usr/share/nodejs
# (where node-acorn lives) by default.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}

node scripts/gen-constants.mjs --check
if [ ! -f build/wasm/build.ninja ]; then
  emcmake cmake -S . -B build/wasm -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build/wasm
node scripts/build-js.mjs
