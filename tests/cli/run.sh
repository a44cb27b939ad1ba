#!/usr/bin/env bash
# tests/cli/run.sh BIN — runs every tests/cli/test_*.sh against the loralab binary BIN.
# Each test file is sourced with $LORALAB set and a fresh $TMP directory.
set -u
here=$(cd "$(dirname "$0")" && pwd)
LORALAB=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
source "$here/lib.sh"
for t in "$here"/test_*.sh; do
  CURRENT_TEST=$(basename "$t")
  TMP=$(mktemp -d)
  before=$FAILS
  SKIPPED=""
  source "$t"
  rm -rf "$TMP"
  if [ $FAILS -ne $before ]; then echo "FAIL $CURRENT_TEST"
  elif [ -n "$SKIPPED" ]; then SKIPS=$((SKIPS+1)); echo "SKIP $CURRENT_TEST: $SKIPPED"
  else echo "ok   $CURRENT_TEST"; fi
done
echo "cli: $CHECKS checks, $FAILS failed, $SKIPS file(s) skipped in part"
[ $FAILS -eq 0 ]
