#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust and Python, when missing and when we may
# (root with apt-get): Debian's chromium (the report's browser test) and slurm-wlm with
# munge (the one-node Slurm cluster tests). Elsewhere it says so, and those tests skip
# with the same message.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || missing+=(munge)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (Debian packages) for the browser and Slurm tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "${missing[*]} missing and not installable here (needs root and apt-get); those tests will skip" >&2
fi
