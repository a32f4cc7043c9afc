#!/usr/bin/env bash
# Install, migrate SQLite, load the demo data and start the service on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SESSION_COOKIE_SECURE=${SESSION_COOKIE_SECURE:-false}
export PORT=${PORT:-8000}
# A restart maps the last snapshot of the match index instead of building it (docs/OPERATIONS.md).
export MATCH_INDEX_SNAPSHOT=${MATCH_INDEX_SNAPSHOT:-$PWD/instance/match-index}
.venv/bin/flask --app wsgi db upgrade
.venv/bin/flask --app wsgi seed-demo
cat <<MSG

The service is starting on http://127.0.0.1:${PORT}/
  Portal:   http://127.0.0.1:${PORT}/            (sign in with an e-mail and password printed above)
  API docs: http://127.0.0.1:${PORT}/api/v1/docs (Authorize -> Bearer with an admin API key: printed above
            on the first start; later: .venv/bin/flask --app wsgi create-api-key --name <who> --role admin)
Stop it with Ctrl-C.
MSG
exec .venv/bin/gunicorn --config gunicorn.conf.py --bind "127.0.0.1:${PORT}" wsgi:app
