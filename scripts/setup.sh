#!/usr/bin/env bash
# Installs what vkmha needs on Debian 12 (only what is missing) and builds it.
# Sourced by demo.sh and test.sh; run it alone to just build.
# Usage: scripts/setup.sh [BUILD_DIR]   (default: $VKMHA_BUILD_DIR, else build/ in the checkout). With a build
# directory outside the checkout nothing is written into the checkout, so it may be read-only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Sourced, "$1" is the calling script's first argument: each script takes the same optional build directory.
build="$(realpath -m "${1:-${VKMHA_BUILD_DIR:-$root/build}}")"
export VKMHA_BUILD_DIR="$build" # for the scripts the caller runs next (check_abi.sh, check_consumer.sh)
packages=(build-essential cmake ninja-build pkg-config libvulkan-dev glslang-tools libglm-dev doctest-dev libpng-dev
          mesa-vulkan-drivers vulkan-validationlayers clang-format libopenblas-dev abigail-tools
          libcli11-dev nlohmann-json3-dev)
missing=()
if command -v dpkg-query >/dev/null; then
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
else
    echo "vkmha: no dpkg-query (not Debian?): installing nothing; vkmha needs ${packages[*]}" >&2
fi
if ((${#missing[@]})); then
    echo "vkmha: missing ${missing[*]}: installing with apt-get"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" # quiets the Vulkan loader on headless machines
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
