#!/usr/bin/env bash
# The benchmarks on real servers (BENCHMARKS.md): installs what is missing, starts the dev
# Kafka broker and a throwaway PostgreSQL (the read side of the multi-worker runs), runs
# `python -m bench --size full` (arguments are passed on), stops the broker it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export IOS_DATA_DIR="${IOS_DATA_DIR:-$PWD/.integrationos-bench}"
export IOS_KAFKA_BOOTSTRAP="${IOS_KAFKA_BOOTSTRAP:-127.0.0.1:19092}"
if [ -z "${IOS_TEST_POSTGRES_URL:-}" ]; then
  if PG_URL="$(.ci/postgres.sh)"; then
    export IOS_TEST_POSTGRES_URL="$PG_URL"
  else
    echo "PostgreSQL could not be started: the read side is SQLite (slower with 2+ workers)" >&2
  fi
fi
.venv/bin/integrationos kafka start
trap '.venv/bin/integrationos kafka stop' EXIT
.venv/bin/python -m bench --size full "$@"
