#!/usr/bin/env bash
# The demo: builds vkmha, makes a random attention layer and input, and runs vkmha-run on the default Vulkan
# device (lavapipe on a machine without a GPU), then on the CPU reference, and compares the two.
# Usage: scripts/demo.sh [BUILD_DIR]   (default: $VKMHA_BUILD_DIR, else build/ in the checkout); the demo's files go
# to BUILD_DIR/demo, so a read-only checkout works with a build directory elsewhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup.sh"
bin="$build/bin"
out="$build/demo"
mkdir -p "$out"
"$bin/vkmha-make-example" --prefix "$out/example" --embed 256 --heads 8 --batch 2 --lq 129 --key-padding
"$bin/vkmha-run" --weights "$out/example.weights.safetensors" --input "$out/example.input.safetensors" \
    --output "$out/gpu.safetensors" --heads 8 --causal --need-weights
"$bin/vkmha-run" --weights "$out/example.weights.safetensors" --input "$out/example.input.safetensors" \
    --output "$out/cpu.safetensors" --heads 8 --causal --need-weights --device cpu
"$bin/vkmha-compare" "$out/gpu.safetensors" "$out/cpu.safetensors"
