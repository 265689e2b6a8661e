#!/usr/bin/env bash
# Installs Debian's chromium for the report's browser test when it is missing and we may
# (root with apt-get). Elsewhere it says so; the test then skips with the same message.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (Debian package) for the report's browser test" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "chromium is not installed and cannot be installed here (needs root and apt-get); the browser test will skip" >&2
fi
