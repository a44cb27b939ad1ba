#!/usr/bin/env bash
# scripts/gpu_bundle.sh — builds, on this machine, everything the GPU check needs, into one
# folder that runs on a GPU machine without our build dependencies (no libyaml, SQLite,
# jansson, cmocka, BLAS or oneDNN there; only the machine's own CUDA and C libraries).
#
#   scripts/gpu_bundle.sh [--out DIR] [--build DIR] [--jobs N]
#
# 1. make bin/loralab and tests/test_cuda_ops in their own build folder (default build-gpu),
#    with CUDA for sm_90 plus compute_90 PTX (H100/H200, and newer GPUs through the PTX), and
#    host code for x86-64-v3 (AVX2/FMA: any H100/H200 host), not this machine's -march=native.
# 2. Copy every shared library the two binaries need, as ldd resolves them here, except the
#    C runtime (glibc's libraries, the dynamic loader, libstdc++ and libgcc_s: the GPU
#    machine's CUDA libraries load that machine's own, and this machine's libstdc++ needs a
#    newer glibc than some GPU machines have) and CUDA's (libcudart, cuBLAS, cuSOLVER and what
#    they load, taken from the GPU machine). Which libraries those are is read from ldd each
#    time, so a change of libraries in the Makefile needs no change here.
# 3. Pack binaries, libraries and the check's data (tests/fixtures/sst2_tiny) into
#    DIR/payload.tar.gz (gzip: on every Linux machine), beside a copy of scripts/gpu_check.sh
#    and DIR/MANIFEST (what was built, from which commit, the newest glibc symbol version the
#    bundle needs, the CUDA libraries it expects, and each file's sha256).
# 4. Check that DIR stays under 64 MiB (what the device tool carries), and print the `carry`
#    list and the command for the device tool.
#
# DIR defaults to gpu-bundle (git-ignored). Exit status: 0 built; 1 the build or a check
# failed; 2 bad usage or no CUDA toolkit here.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=gpu-bundle
BUILD_DIR=build-gpu
JOBS=2
LIMIT_MIB=64
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=${2:?--out needs a folder}; shift 2 ;;
        --build) BUILD_DIR=${2:?--build needs a folder}; shift 2 ;;
        --jobs) JOBS=${2:?--jobs needs a number}; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_bundle: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# replace an earlier bundle, never a folder that holds anything else
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ] && [ ! -f "$OUT/MANIFEST" ]; then
    echo "gpu_bundle: $OUT exists and is not a bundle; not replacing it" >&2
    exit 2
fi
BINS=("$BUILD_DIR/bin/loralab" "$BUILD_DIR/tests/test_cuda_ops")
CUDA_ARCH="-gencode arch=compute_90,code=[sm_90,compute_90]"
HOST_CFLAGS="-O3 -march=x86-64-v3 -g"

# The C runtime and CUDA's libraries: resolved on the GPU machine, never copied.
is_system_lib() {
    case "$1" in
        linux-vdso.so.*|linux-gate.so.*|ld-linux*.so.*|libc.so.*|libm.so.*|libmvec.so.*|\
        libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|\
        libstdc++.so.*|libgcc_s.so.*) return 0 ;;
    esac
    return 1
}
is_cuda_lib() {
    case "$1" in
        libcuda.so.*|libcudart.so.*|libcublas.so.*|libcublasLt.so.*|libcusolver.so.*|\
        libcusolverMg.so.*|libcusparse.so.*|libcufft.so.*|libcurand.so.*|libnvJitLink.so.*|\
        libnvrtc.so.*|libnvidia-*.so*) return 0 ;;
    esac
    return 1
}

echo "== gpu_bundle: build in $BUILD_DIR (CUDA: $CUDA_ARCH; host: $HOST_CFLAGS)"
t0=$(date +%s)
mkdir -p "$BUILD_DIR"
log="$BUILD_DIR/bundle-build.log"
if ! make -j"$JOBS" BUILD="$BUILD_DIR" BIN="$BUILD_DIR/bin" CFLAGS="$HOST_CFLAGS" CUDA_ARCH="$CUDA_ARCH" \
        "${BINS[@]}" >"$log" 2>&1; then
    tail -n 30 "$log"
    echo "gpu_bundle: the build failed (log: $log)" >&2
    exit 1
fi
build_line=$(grep -m1 '^loralab build:' "$log" || true)
echo "$build_line"
if ! grep -q '✓ cuda' <<<"$build_line"; then
    echo "gpu_bundle: no CUDA toolkit here, so no GPU bundle (the build line above says why)" >&2
    exit 2
fi
cuda_home=$(sed -n 's/.*✓ cuda (\([^)]*\)).*/\1/p' <<<"$build_line")
echo "build: $(( $(date +%s) - t0 ))s"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/data"
cp "${BINS[@]}" "$stage/bin/"
cp -r tests/fixtures/sst2_tiny "$stage/data/"

# ldd here, without LD_LIBRARY_PATH: each "name => path" is copied under its name.
declare -A cuda_needed=()
for b in "${BINS[@]}"; do
    out=$(env -u LD_LIBRARY_PATH ldd "$b")
    if grep -q 'not found' <<<"$out"; then
        echo "gpu_bundle: $b needs libraries this machine does not have:" >&2
        grep 'not found' <<<"$out" >&2
        exit 1
    fi
    while read -r name arrow path _; do
        [ "$arrow" = "=>" ] || continue
        if is_system_lib "$name"; then continue; fi
        if is_cuda_lib "$name"; then cuda_needed[$name]=1; continue; fi
        [ -e "$stage/lib/$name" ] || cp -L "$path" "$stage/lib/$name"
    done <<<"$out"
done
[ ${#cuda_needed[@]} -gt 0 ] || { echo "gpu_bundle: the binaries link no CUDA library" >&2; exit 1; }

# The newest glibc symbol version anything in the bundle asks for: the GPU machine's glibc
# must be at least this (gpu_check.sh compares).
glibc_min=$(for f in "$stage"/bin/* "$stage"/lib/*; do objdump -T "$f" 2>/dev/null; done |
            grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -n 1)

{
    echo "built=$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    echo "commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes)"
    echo "arch=$(uname -m)"
    echo "glibc_min=$glibc_min"
    echo "nvcc=$("$cuda_home/bin/nvcc" --version 2>/dev/null | grep -o 'release [0-9.]*' | cut -d' ' -f2)"
    echo "cuda_arch=$CUDA_ARCH"
    echo "host_cflags=$HOST_CFLAGS"
    echo "cuda_libs=$(printf '%s\n' "${!cuda_needed[@]}" | sort | tr '\n' ' ' | sed 's/ $//')"
    (cd "$stage" && find bin lib data -type f | sort | xargs sha256sum | sed 's/^/sha256 /')
} >"$stage/MANIFEST"

rm -rf "$OUT"
mkdir -p "$OUT"
tar -C "$stage" -czf "$OUT/payload.tar.gz" bin lib data MANIFEST
cp "$stage/MANIFEST" "$OUT/MANIFEST"
cp scripts/gpu_check.sh "$OUT/gpu_check.sh"
chmod +x "$OUT/gpu_check.sh"

bytes=$(du -sb "$OUT" | cut -f1)
echo "bundle: $OUT ($bytes bytes; unpacked $(du -sb "$stage" | cut -f1)), libraries copied: $(ls "$stage/lib" | tr '\n' ' ')"
echo "bundle: needs glibc >= $glibc_min and, from the GPU machine, $(printf '%s ' "${!cuda_needed[@]}")"
if [ "$bytes" -ge $((LIMIT_MIB * 1024 * 1024)) ]; then
    echo "gpu_bundle: $OUT is $bytes bytes, over the ${LIMIT_MIB} MiB the device tool carries" >&2
    exit 1
fi
echo "carry: [\"$OUT\"]"
echo "device command: bash scripts/gpu_check.sh --bundle $OUT --json \"\$OUT/gpu_check.json\""
