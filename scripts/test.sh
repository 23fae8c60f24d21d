#!/usr/bin/env bash
# The whole suite: builds vkmha and runs every test with the Khronos validation layer on (any validation message
# fails a test): first an ASan+UBSan build of the suites, then the release build through CTest, then the public ABI
# against its baseline (scripts/check_abi.sh) and the consumer test (scripts/check_consumer.sh).
# Usage: scripts/test.sh [BUILD_DIR]   (default: $VKMHA_BUILD_DIR, else build/ in the checkout); the sanitizer build
# goes to BUILD_DIR-asan and the consumer test to BUILD_DIR/consumer, so a read-only checkout works with a build
# directory elsewhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup.sh" # sets $build
asan="$build-asan"

# Sanitizers. LeakSanitizer checks the Vulkan-free suites; in the GPU suites Mesa's llvmpipe leaks at exit in ways
# that cannot be told from ours, so leaks are not checked there — the validation layer reports any Vulkan object
# vkmha leaves undestroyed.
cmake -S "$root" -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVKMHA_SANITIZE=ON >/dev/null
cmake --build "$asan" -j "$(nproc)" --target vkmha-tests vkmha-run
host_only="safetensors,weight_map,cpu_reference"
echo "vkmha: ASan+UBSan, Vulkan-free suites (with leak checks)"
ASAN_OPTIONS=detect_leaks=1 "$asan/bin/vkmha-tests" --test-suite="$host_only" --minimal
# The fault-injection sweeps repeat one scenario some 1,300 times: they run in the release build (CTest) only; the
# targeted fault tests beside them run here too.
echo "vkmha: ASan+UBSan, GPU suites"
ASAN_OPTIONS=detect_leaks=0 "$asan/bin/vkmha-tests" --test-suite-exclude="$host_only" \
    --test-case-exclude="sweep: every*" --minimal

(cd "$build" && ctest --output-on-failure -j "$(nproc)")

bash "$root/scripts/check_abi.sh"
bash "$root/scripts/check_abi.sh" --self-test
bash "$root/scripts/check_consumer.sh"
