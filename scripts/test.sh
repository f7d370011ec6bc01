#!/usr/bin/env bash
# The whole test suite on real servers: installs what is missing, starts the dev Kafka
# broker and throwaway PostgreSQL, MariaDB and Redis servers, runs ruff and pytest, stops the
# broker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export IOS_DATA_DIR="${IOS_DATA_DIR:-$PWD/.integrationos-test}"
export IOS_KAFKA_BOOTSTRAP="${IOS_KAFKA_BOOTSTRAP:-127.0.0.1:19092}"
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || (apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server)  # for the SFTP tests
# start_server NAME VARIABLE SCRIPT: run SCRIPT (it prints the server's URL) and export the
# URL as VARIABLE. CI must have every server; elsewhere the tests needing a missing one skip.
start_server() {
  local url
  if url="$("$3")"; then
    export "$2=$url"
  elif [ -n "${CI:-}" ]; then
    echo "$1 could not be started" >&2; exit 1
  else
    echo "$1 could not be started: the tests that need it are skipped" >&2
  fi
}
start_server PostgreSQL IOS_TEST_POSTGRES_URL .ci/postgres.sh
start_server MariaDB IOS_TEST_MARIADB_URL .ci/mariadb.sh
start_server Redis IOS_TEST_REDIS_URL .ci/redis.sh
.venv/bin/integrationos kafka start
trap '.venv/bin/integrationos kafka stop' EXIT
.venv/bin/ruff check integrationos tests bench
.venv/bin/ruff check --config sdks/python/pyproject.toml sdks/python  # the SDK: Python 3.9 rules
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
