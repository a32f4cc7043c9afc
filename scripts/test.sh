#!/usr/bin/env bash
# Install everything the tests need (venv, packages, Debian's Chromium and fonts-noto-cjk,
# axe-core from npm) and run the whole suite on SQLite and on PostgreSQL (a fresh database per
# run, created by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! [ -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
# The CJK font the chart tests need (setup.sh tries it too, but lets the service start
# without it); in CI its absence fails tests/portal/test_chart_languages.py.
if ! dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed"; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null
  fi
fi
# axe-core for the accessibility tests, from the npm registry, kept in .cache/axe.
if ! [ -f .cache/axe/node_modules/axe-core/axe.min.js ]; then
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    else
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    fi
  fi
  npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@4.11 >/dev/null
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
status=0
echo "== tests on SQLite =="
TEST_DB=sqlite .venv/bin/python -m pytest -n 2 "$@" || status=1
echo "== tests on PostgreSQL =="
TEST_DB=postgresql .venv/bin/python -m pytest -n 2 "$@" || status=1
echo "== lint =="
.venv/bin/ruff check . || status=1
exit $status
