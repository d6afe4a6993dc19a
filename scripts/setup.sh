#!/usr/bin/env bash
# Installs what building and testing need on Debian 12, skipping what is already there, so it is
# safe to run any number of times. Node.js 20 and npm come with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  cmake ninja-build g++        # native core + doctest suite
  emscripten node-acorn        # the wasm build (emcc's optimiser needs acorn)
  nlohmann-json3-dev           # JSON in the core
  doctest-dev                  # the native test framework
  json-schema-test-suite       # valid JSON documents for the parser's differential test
  redis-server                 # real Redis for the KV tests
  chromium                     # the browser runtime test (driven by playwright-core)
  openssl                      # a self-signed certificate for the https transport test
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.setup-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
