#!/usr/bin/env bash
# scripts/setup.sh — install the Debian packages loralab's build and tests need, if missing.
# Prints what it installs; does nothing (quietly) when everything is present.
set -euo pipefail
need=(build-essential libdnnl-dev liblapacke-dev libyaml-dev libsqlite3-dev sqlite3
      libjansson-dev gnuplot-nox libcmocka-dev nodejs npm clang-14 libclang-rt-14-dev python3
      slurmctld slurmd slurm-client munge)   # the Slurm executor's tests start a one-node cluster
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere than Debian (e.g. nvm); accept any working npm.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
