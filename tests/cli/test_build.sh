# tests/cli/test_build.sh — the Makefile's CUDA probe, which decides whether CUDA objects are
# built, read from its build line (`make -n` evaluates the probes and builds nothing). nvcc
# may be a wrapper script elsewhere on PATH (as /usr/local/bin/nvcc on the CI machine): the
# toolkit root is asked of nvcc itself, and CUDA is linked only if its libraries link.
ROOT=$(cd "$(dirname "$LORALAB")/.." && pwd)
build_line() { env -u CUDA_HOME make -n -C "$ROOT" "$@" all 2>/dev/null | grep -m1 '^loralab build:'; }

# an nvcc whose toolkit has no libraries: CPU-only, saying why
mkdir -p "$TMP/empty/bin" "$TMP/fake"
printf '#!/bin/sh\necho "#\\$ TOP=%s/empty/bin/.."\n' "$TMP" > "$TMP/fake/nvcc"
chmod +x "$TMP/fake/nvcc"
expect_out "✗ cuda \\(nvcc $TMP/fake/nvcc found but no cudart/cublas/cusolver to link under '$TMP/empty'\\)" \
  build_line NVCC="$TMP/fake/nvcc"
expect_out '✗ cuda \(NO_CUDA=1\)' build_line NO_CUDA=1

# a wrapper script in front of a real toolkit (where this machine has one): CUDA found at the
# toolkit's own root, not at the wrapper's
real=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
if [ -n "$real" ] && env -u CUDA_HOME make -n -C "$ROOT" all 2>/dev/null | grep -q '✓ cuda'; then
  printf '#!/bin/sh\nexec %s "$@"\n' "$real" > "$TMP/fake/nvcc"
  top=$(realpath "$("$real" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p')")
  expect_out "✓ cuda \\($top\\)" build_line NVCC="$TMP/fake/nvcc"
fi
