#!/usr/bin/env bash
# Every test: native doctest suite under ASan/UBSan, the wasm build, then the JS suites in Node,
# workerd, edge-runtime and Chromium, with a real redis-server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== native core + doctest (ASan/UBSan)"
if [ ! -f build/native/build.ninja ]; then
  cmake -S . -B build/native -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAGENT_TOOLS_SANITIZE=ON >/dev/null
fi
cmake --build build/native
ctest --test-dir build/native --output-on-failure

echo "== wasm + package build"
bash scripts/build.sh

echo "== redis-server"
redis_dir=$(mktemp -d)
redis_port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" --daemonize no >"$redis_dir/log" 2>&1 &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; rm -rf "$redis_dir"' EXIT
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
export AGENT_TOOLS_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"

echo "== types"
npx tsc -p tests/types

echo "== JS tests (Node, workerd, edge-runtime, Chromium)"
node --expose-gc --test --test-concurrency=1 tests/js/*.test.mjs tests/runtimes/*.test.mjs
