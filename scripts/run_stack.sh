#!/usr/bin/env bash
# Start web, serving worker, bookkeeping worker, beat and Flower under honcho (see Procfile).
set -euo pipefail
cd "$(dirname "$0")/.."
port="${SWARM_PORT:-8000}"
flower="${FLOWER_PORT:-5555}"
cat <<MSG

  Swarm is starting: API on http://127.0.0.1:${port}  (admin: /admin/, health: /health)
  Flower on http://127.0.0.1:${flower} (user admin, password in var/flower_password), metrics on :${port}/metrics and the exporter on :${SWARM_EXPORTER_PORT:-9091}

  Try:
    curl -s http://127.0.0.1:${port}/health
    curl -s -X POST http://127.0.0.1:${port}/orchestrate -H 'Content-Type: application/json' -d '{"prompt":"hi"}'

  Ctrl-C stops everything.

MSG
# Every process of the stack writes its metrics here; /metrics and the exporter add them up.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/metrics}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
exec honcho start -f Procfile
