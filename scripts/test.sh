#!/usr/bin/env bash
# The whole test suite on real servers: installs what is missing, starts the dev Kafka
# broker and a throwaway PostgreSQL, runs ruff and pytest, stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export IOS_DATA_DIR="${IOS_DATA_DIR:-$PWD/.integrationos-test}"
export IOS_KAFKA_BOOTSTRAP="${IOS_KAFKA_BOOTSTRAP:-127.0.0.1:19092}"
if PG_URL="$(.ci/postgres.sh)"; then
  export IOS_TEST_POSTGRES_URL="$PG_URL"
elif [ -n "${CI:-}" ]; then
  echo "PostgreSQL could not be started" >&2; exit 1
else
  echo "PostgreSQL could not be started: the PostgreSQL variants of the tests are skipped" >&2
fi
.venv/bin/integrationos kafka start
trap '.venv/bin/integrationos kafka stop' EXIT
.venv/bin/ruff check integrationos tests
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
