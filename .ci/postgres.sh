#!/usr/bin/env bash
# Starts a throwaway PostgreSQL (Debian's package) on 127.0.0.1:${IOS_TEST_PG_PORT:-54329}
# for the projection tests, and prints its URL. Installs the package if it is missing.
set -euo pipefail
PORT="${IOS_TEST_PG_PORT:-54329}"
DIR="${IOS_TEST_PG_DIR:-/tmp/integrationos-pg}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
BIN="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
if ! "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" -q; then
  rm -rf "$DIR" && mkdir -p "$DIR" && chown postgres:postgres "$DIR"
  su postgres -s /bin/sh -c "'$BIN/initdb' -D '$DIR/data' -A trust -U postgres" >/dev/null
  su postgres -s /bin/sh -c "'$BIN/pg_ctl' -D '$DIR/data' -l '$DIR/server.log' -w \
    -o '-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200' start" >&2
fi
echo "postgresql://postgres@127.0.0.1:${PORT}/postgres"
