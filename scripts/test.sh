#!/usr/bin/env bash
# The whole suite: builds vkmha and runs every test (doctest suites through CTest) with the Khronos validation
# layer on; any validation message fails a test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup.sh"
cd "$root/build"
ctest --output-on-failure -j "$(nproc)"
