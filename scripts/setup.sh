#!/usr/bin/env bash
# Create .venv and install the service with its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
# A font with Chinese and Japanese glyphs (Debian's fonts-noto-cjk), so that the portal's KPI
# charts are drawn in zh-TW and Japanese (portal/charts.py). Installed only where apt-get runs
# as root or through sudo without a password; never fails the setup: without the font the
# charts keep English words.
if command -v apt-get >/dev/null && ! dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null \
    | grep -q "ok installed"; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    as_root=(false)
  fi
  if [ "${as_root[*]}" != false ] && { "${as_root[@]}" apt-get update -qq \
      && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq fonts-noto-cjk >/dev/null; } 2>/dev/null; then
    echo "Installed fonts-noto-cjk: charts in Chinese and Japanese."
  else
    echo "Note: fonts-noto-cjk not installed (needs root or sudo): charts stay in English." >&2
  fi
fi
