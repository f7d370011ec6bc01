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
if PG_URL="$(.ci/postgres.sh)"; then
  export IOS_TEST_POSTGRES_URL="$PG_URL"
elif [ -n "${CI:-}" ]; then
  echo "PostgreSQL could not be started" >&2; exit 1
else
  echo "PostgreSQL could not be started: the PostgreSQL variants of the tests are skipped" >&2
fi
if MARIADB_URL="$(.ci/mariadb.sh)"; then
  export IOS_TEST_MARIADB_URL="$MARIADB_URL"
elif [ -n "${CI:-}" ]; then
  echo "MariaDB could not be started" >&2; exit 1
else
  echo "MariaDB could not be started: the MariaDB variants of the tests are skipped" >&2
fi
if REDIS_URL="$(.ci/redis.sh)"; then
  export IOS_TEST_REDIS_URL="$REDIS_URL"
elif [ -n "${CI:-}" ]; then
  echo "Redis could not be started" >&2; exit 1
else
  echo "Redis could not be started: the shared rate-limit tests are skipped" >&2
fi
.venv/bin/integrationos kafka start
trap '.venv/bin/integrationos kafka stop' EXIT
.venv/bin/ruff check integrationos tests bench
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
