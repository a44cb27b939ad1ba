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
  source "$t"
  rm -rf "$TMP"
  [ $FAILS -eq $before ] && echo "ok   $CURRENT_TEST" || echo "FAIL $CURRENT_TEST"
done
echo "cli: $CHECKS checks, $FAILS failed"
[ $FAILS -eq 0 ]
