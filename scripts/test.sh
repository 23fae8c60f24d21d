#!/usr/bin/env bash
# The whole suite: builds vkmha and runs every test with the Khronos validation layer on (any validation message
# fails a test): first an ASan+UBSan build of the suites, then the release build through CTest, a ThreadSanitizer build
# of the threaded suite, the libFuzzer targets for 30 s each and the short soak (scripts/soak.sh), then the public ABI
# against its baseline (scripts/check_abi.sh) and the consumer test (scripts/check_consumer.sh).
# Usage: scripts/test.sh [BUILD_DIR]   (default: $VKMHA_BUILD_DIR, else build/ in the checkout); the sanitizer build
# goes to BUILD_DIR-asan and the consumer test to BUILD_DIR/consumer, so a read-only checkout works with a build
# directory elsewhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup.sh" # sets $build
asan="$build-asan"

# A CI log is read from its tail, and a suite's passing reports (MESSAGE lines) push a failure far above it: each
# doctest run is logged, and when it fails its failing test cases' reports are printed again, last.
failures() { # LOG: the report blocks (between doctest's ==== rules) that hold an ERROR
    awk 'BEGIN { RS = "\n=+\n" } /: (FATAL )?ERROR: |==[0-9]+==ERROR/ { print "===="; print }' "$1"
}
doctest_run() { # COMMAND...: runs a doctest binary; on failure repeats its failures and fails
    local log
    log="$(mktemp)"
    if "$@" 2>&1 | tee "$log"; then
        rm -f "$log"
        return 0
    fi
    echo "vkmha: FAILED: $*" >&2
    failures "$log" >&2
    rm -f "$log"
    return 1
}

# Sanitizers. LeakSanitizer checks the Vulkan-free suites; in the GPU suites Mesa's llvmpipe leaks at exit in ways
# that cannot be told from ours, so leaks are not checked there — the validation layer reports any Vulkan object
# vkmha leaves undestroyed.
cmake -S "$root" -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DVKMHA_SANITIZE=ON >/dev/null
cmake --build "$asan" -j "$(nproc)" --target vkmha-tests
host_only="safetensors,weight_map,cpu_reference"
echo "vkmha: ASan+UBSan, Vulkan-free suites (with leak checks)"
ASAN_OPTIONS=detect_leaks=1 doctest_run "$asan/bin/vkmha-tests" --test-suite="$host_only" --minimal
# The GPU suites under ASan: every suite that drives vkmha's host code through the C ABI or the core (boundaries,
# errors, caches, prefill, arenas, KV state, uploads, threads, soak, limits, the targeted fault tests). Left to the
# release run (CTest), to keep this phase minutes long: the numeric sweeps (attention: hundreds of shapes through the
# same host paths; cli and heads: the tools as child processes), the compile-only statistics (shader_stats,
# kernel_policy), the fault-injection sweeps (one scenario some 1,300 times) and the 557,056-row projection.
echo "vkmha: ASan+UBSan, GPU suites"
ASAN_OPTIONS=detect_leaks=0 doctest_run "$asan/bin/vkmha-tests" \
    --test-suite-exclude="$host_only,attention,cli,heads,shader_stats,kernel_policy" \
    --test-case-exclude="sweep: every*,*557056 token rows*" --minimal

if ! (cd "$build" && ctest --output-on-failure -j "$(nproc)"); then
    echo "vkmha: FAILED: ctest; the failing tests' reports:" >&2
    failures "$build/Testing/Temporary/LastTest.log" >&2
    exit 1
fi

# ThreadSanitizer (clang): the threaded suite (tests/test_threads.cpp). Only the
# driver's own reports are suppressed (tests/tsan.supp says why for each); any race in vkmha fails the run.
echo "vkmha: ThreadSanitizer, threaded suites"
cmake -S "$root" -B "$build-tsan" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_C_COMPILER=clang-14 -DVKMHA_SANITIZE_THREAD=ON >/dev/null
cmake --build "$build-tsan" -j "$(nproc)" --target vkmha-tests-threads
TSAN_OPTIONS="suppressions=$root/tests/tsan.supp halt_on_error=1 history_size=4" \
    doctest_run "$build-tsan/bin/vkmha-tests-threads" --minimal

# libFuzzer (clang, ASan+UBSan): each target for a bounded time (30 s) from its committed seed corpus (fuzz/corpus/);
# new inputs go to a scratch corpus in build-fuzz, crashes to build-fuzz/crash-* (turn each into a regression test).
echo "vkmha: fuzzing, 30 s per target"
cmake -S "$root" -B "$build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_C_COMPILER=clang-14 -DVKMHA_FUZZ=ON -DVKMHA_BUILD_TOOLS=OFF -DVKMHA_BUILD_TESTS=OFF -DVKMHA_INSTALL=OFF \
    >/dev/null
cmake --build "$build-fuzz" -j "$(nproc)" --target vkmha-fuzz-safetensors vkmha-fuzz-c-api
rm -f "$build-fuzz"/{crash,leak,timeout,oom}-*
for target in safetensors c_api; do
    scratch="$build-fuzz/corpus-$target"
    mkdir -p "$scratch"
    # -timeout: one input of the C API target may create a whole own-mode context (seconds on a loaded machine); a
    # hang is still caught. That target's context lives for the whole process, and lavapipe leaks at exit (21 blocks
    # from libvulkan_lvp.so, measured): no leak checks there; vkmha's leaks are the soak suite's and the fault sweep's.
    leaks=1
    [ "$target" = c_api ] && leaks=0
    ASAN_OPTIONS="detect_leaks=$leaks" \
        "$build-fuzz/bin/vkmha-fuzz-${target//_/-}" -max_total_time=30 -timeout=60 -rss_limit_mb=4096 \
            -detect_leaks=$leaks -print_final_stats=1 -artifact_prefix="$build-fuzz/" \
            "$scratch" "$root/fuzz/corpus/$target" 2>&1 | grep -E "^(stat::|#[0-9]+ +DONE|==|SUMMARY|ERROR)" || true
    if ls "$build-fuzz"/{crash,leak,timeout,oom}-* >/dev/null 2>&1; then
        echo "vkmha: the $target fuzzer found a failing input (build-fuzz/)" >&2
        exit 1
    fi
done

# Soak, short form: frame-loop's memory flat from 100 to 1000 frames (scripts/soak.sh --long: 10000 frames).
bash "$root/scripts/soak.sh" "$build"

bash "$root/scripts/check_abi.sh"
bash "$root/scripts/check_abi.sh" --self-test
bash "$root/scripts/check_consumer.sh"
