#!/usr/bin/env bash
# The check to run the day a machine with a GPU is lent (issue 15): builds vkmha, finds the first real GPU (not
# lavapipe, SwiftShader or RADV's null hardware), runs the conformance suite on it, the shader statistics where its
# driver reports them, and vkmha-bench's fp16 fused attention at B1 H32 D128 L4096 (prefill) and Lq1 Lk8192
# (decode); where PyTorch with CUDA is installed, it times torch.nn.functional.scaled_dot_product_attention on the
# same shapes and prints both in TFLOP/s. Without a GPU it says so and exits 0: nothing here is needed to build or
# test vkmha.
#
#   scripts/gpu-check.sh               everything above (build folder: build-gpu)
#   scripts/gpu-check.sh --no-tests    skip the conformance suite (the bench and SDPA only)
#   GPU_CHECK_BUILD=DIR                another build folder
#
# Results go to build-gpu/gpu-check/ (bench JSON, shader statistics, the comparison) and stdout; copy the figures
# into docs/PERFORMANCE.md ("GPU kernels on AMD's compiler" says what is known without a GPU) with the device named.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GPU_CHECK_BUILD:-$root/build-gpu}"
out="$build/gpu-check"
run_tests=1
for arg in "$@"; do
    case "$arg" in
    --no-tests) run_tests=0 ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done
unset RADV_FORCE_FAMILY # a null device is not a GPU

echo "gpu-check: building in $build"
if [ -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" >/dev/null # keep the folder's generator and build type
else
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j"$(nproc)" >/dev/null
mkdir -p "$out"
bench="$build/bin/vkmha-bench"

# The device vkmha picks by default (discrete > integrated > virtual > CPU), as vkmha-bench names it.
# (--shader-stats only builds pipelines: seconds, also on lavapipe.)
device_line="$("$bench" --shader-stats --head-dim 64 2>/dev/null | grep -m1 '^device: ' || true)"
device="${device_line#device: }"
device="${device%% (subgroup*}"
case "$device" in
"" | *llvmpipe* | *SwiftShader* | *"Null hardware"*)
    echo "gpu-check: no GPU found (vkmha's default device is '${device:-none}': a CPU implementation)."
    echo "gpu-check: nothing to measure here; run this script on a machine with a GPU."
    exit 0
    ;;
esac
echo "gpu-check: GPU: $device"

if [ "$run_tests" = 1 ]; then
    echo "gpu-check: conformance suite on $device (ctest, validation layer on)"
    (cd "$build" && XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" ctest -j"$(nproc)" --output-on-failure) |
        tee "$out/ctest.log" | tail -n 5
fi

echo "gpu-check: shader statistics"
"$bench" --shader-stats --device "$device" --heads 32 --kv-heads 8 --head-dim 64,128 --precision fp16,fp32 \
    --json "$out/shader-stats.json" | tee "$out/shader-stats.txt"

echo "gpu-check: vkmha fp16 fused attention"
"$bench" --device "$device" --sizes 4096 --heads 32 --head-dim 128 --precision fp16 --paths fused --repeat 5 \
    --json "$out/prefill.json" --png "$out/prefill.png" | tee "$out/prefill.txt"
"$bench" --device "$device" --lq 1 --sizes 8192 --heads 32 --head-dim 128 --precision fp16 \
    --paths fused,fused-nosplit --repeat 5 --json "$out/decode.json" --png "$out/decode.png" | tee "$out/decode.txt"

python3 - "$out" <<'EOF'
import json, os, sys, time
out = sys.argv[1]
def vkmha(name):
    with open(os.path.join(out, name)) as f:
        rows = json.load(f)["rows"]
    return {r["path"]: r["attention_core_gflops"] / 1000.0 for r in rows}
prefill, decode = vkmha("prefill.json"), vkmha("decode.json")
print("\n| shape | vkmha fused core TFLOP/s | SDPA TFLOP/s |")
print("|---|---:|---:|")
sdpa = {}
try:
    import torch
    if torch.cuda.is_available():
        F = torch.nn.functional
        for name, lq, lk in (("prefill", 4096, 4096), ("decode", 1, 8192)):
            q = torch.randn(1, 32, lq, 128, device="cuda", dtype=torch.float16)
            k = torch.randn(1, 32, lk, 128, device="cuda", dtype=torch.float16)
            v = torch.randn_like(k)
            for _ in range(3): F.scaled_dot_product_attention(q, k, v)
            torch.cuda.synchronize()
            runs = 20
            t0 = time.perf_counter()
            for _ in range(runs): F.scaled_dot_product_attention(q, k, v)
            torch.cuda.synchronize()
            seconds = (time.perf_counter() - t0) / runs
            sdpa[name] = 4.0 * 32 * lq * lk * 128 / seconds / 1e12
        sdpa["device"] = torch.cuda.get_device_name()
    else:
        print("(PyTorch is installed without a CUDA device: no SDPA column)")
except ImportError:
    print("(PyTorch is not installed: no SDPA column)")
def cell(value): return "%.2f" % value if value is not None else "-"
print("| B1 H32 D128 L4096 prefill | %s | %s |" % (cell(prefill.get("fused")), cell(sdpa.get("prefill"))))
print("| B1 H32 D128 Lq1 Lk8192 decode (split-K) | %s | %s |" % (cell(decode.get("fused")), cell(sdpa.get("decode"))))
print("| B1 H32 D128 Lq1 Lk8192 decode (no split) | %s | - |" % cell(decode.get("fused-nosplit")))
if "device" in sdpa: print("SDPA ran on", sdpa["device"])
EOF
echo "gpu-check: results in $out"
