#!/usr/bin/env bash
# The platform on the embedded defaults: Kafka broker, one worker and the API on
# http://127.0.0.1:8080 (SQLite read models in .integrationos/). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/integrationos up "$@"
