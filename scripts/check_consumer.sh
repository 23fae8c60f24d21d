#!/usr/bin/env bash
# The consumer test (issue 13): a tiny out-of-tree program (tests/consumer/) takes vkmha the three ways engines take a
# library, builds and runs a forward pass on the default Vulkan device (validation layer on) each time:
#   1. cmake --install of build/ into a prefix, then find_package(vkmha CONFIG) -> vkmha::vkmha
#   2. the same prefix through pkg-config, from a plain Makefile
#   3. add_subdirectory(vkmha), which must build the library and nothing else; built with VKMHA_SHARED=OFF, so the
#      static library (one global symbol) is linked and run here too, and installed (VKMHA_INSTALL=ON) and taken
#      through find_package and pkg-config --static as in 1 and 2.
# Reuses the build directory ($VKMHA_BUILD_DIR, else build/; scripts/setup.sh builds it); only (3) compiles the
# library again, with ccache when it is installed.
# Usage: scripts/check_consumer.sh [work folder, default BUILD/consumer]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VKMHA_BUILD_DIR:-$root/build}"
work="${1:-$build/consumer}"
src="$root/tests/consumer"
prefix="$work/prefix"
rm -rf "$work"
mkdir -p "$work"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
run_consumer() { # the program, with every validation message counted (it fails on any)
    VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation "$@"
}
fail() {
    echo "consumer: FAILED: $*" >&2
    exit 1
}

echo "consumer: cmake --install build -> $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
pc="$(find "$prefix" -path '*/pkgconfig/vkmha.pc' | head -1)"
libdir="$(dirname "$(dirname "${pc:-/none/none}")")"
[ -n "$pc" ] || fail "no vkmha.pc installed"
for f in "$prefix/include/vkmha/vkmha.h" "$libdir/libvkmha.so" "$libdir/libvkmha.so.1" "$libdir/cmake/vkmha/vkmhaConfig.cmake" \
    "$libdir/cmake/vkmha/vkmhaConfigVersion.cmake" "$prefix/bin/vkmha-run"; do
    [ -e "$f" ] || fail "cmake --install did not install $f"
done
[ "$(readlink "$libdir/libvkmha.so")" = libvkmha.so.1 ] || fail "libvkmha.so does not link to libvkmha.so.1"
soname="$(readelf -d "$libdir/libvkmha.so.1" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[ "$soname" = libvkmha.so.1 ] || fail "soname is '$soname', not libvkmha.so.1"
found="$(ldd "$prefix/bin/vkmha-run" | sed -n 's/.*libvkmha.so.1 => \(.*\) (.*/\1/p')"
[ "$(readlink -f "$found")" = "$(readlink -f "$libdir/libvkmha.so.1")" ] ||
    fail "installed vkmha-run loads '$found', not the prefix's libvkmha"

echo "consumer: 1/3 find_package(vkmha CONFIG)"
cmake -S "$src" -B "$work/package" -G Ninja -DVKMHA_CONSUMER_MODE=package -DCMAKE_PREFIX_PATH="$prefix" >"$work/package.log"
cmake --build "$work/package" >>"$work/package.log"
run_consumer "$work/package/vkmha_consumer"

echo "consumer: 2/3 pkg-config --cflags --libs vkmha"
mkdir -p "$work/pkg-config"
PKG_CONFIG_PATH="$libdir/pkgconfig" make -s -C "$work/pkg-config" -f "$src/Makefile" VPATH="$src"
LD_LIBRARY_PATH="$libdir" run_consumer "$work/pkg-config/vkmha_consumer"

echo "consumer: 3/3 add_subdirectory(vkmha), static library (builds the library only)"
launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
start=$SECONDS
cmake -S "$src" -B "$work/subdirectory" -G Ninja -DVKMHA_CONSUMER_MODE=subdirectory -DVKMHA_SOURCE_DIR="$root" \
    -DVKMHA_SHARED=OFF -DVKMHA_INSTALL=ON "${launcher[@]}" >"$work/subdirectory.log"
cmake --build "$work/subdirectory" -j "$(nproc)" >>"$work/subdirectory.log"
echo "consumer: add_subdirectory build took $((SECONDS - start)) s"
archive="$work/subdirectory/vkmha/plugin/libvkmha.a"
globals="$(nm --defined-only --extern-only "$archive" | awk 'NF == 3 { print $3 }')"
[ "$globals" = vkmhaGetProcTable ] || fail "libvkmha.a defines more than vkmhaGetProcTable: $(echo "$globals" | head -5)"
run_consumer "$work/subdirectory/vkmha_consumer"

echo "consumer: the static library installed by the engine's build (VKMHA_INSTALL=ON), through find_package and"
echo "          pkg-config --static"
cmake --install "$work/subdirectory" --prefix "$work/static-prefix" >>"$work/install.log"
cmake -S "$src" -B "$work/static-package" -G Ninja -DVKMHA_CONSUMER_MODE=package -DCMAKE_PREFIX_PATH="$work/static-prefix" \
    >"$work/static-package.log"
cmake --build "$work/static-package" >>"$work/static-package.log"
run_consumer "$work/static-package/vkmha_consumer"
mkdir -p "$work/static-pkg-config"
static_pc="$(find "$work/static-prefix" -path '*/pkgconfig/vkmha.pc' | head -1)"
PKG_CONFIG_PATH="$(dirname "$static_pc")" make -s -C "$work/static-pkg-config" -f "$src/Makefile" VPATH="$src" \
    PKG_CONFIG_FLAGS=--static
run_consumer "$work/static-pkg-config/vkmha_consumer"
echo "consumer: all three ways pass"
