#!/usr/bin/env bash
# Starts a throwaway Redis (Debian's package) on 127.0.0.1:${IOS_TEST_REDIS_PORT:-63799} for
# the shared rate-limit tests, and prints its URL. Installs the package if it is missing; a
# server already answering on the port is reused.
set -euo pipefail
PORT="${IOS_TEST_REDIS_PORT:-63799}"
DIR="${IOS_TEST_REDIS_DIR:-/tmp/integrationos-redis}"
if ! command -v redis-server >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >&2
  # The package starts the system service; the tests use their own server only.
  service redis-server stop >/dev/null 2>&1 || true
fi
if ! redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
  mkdir -p "$DIR"
  redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --save "" --appendonly no \
    --daemonize yes --logfile "$DIR/server.log" --pidfile "$DIR/redis.pid" >&2
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 \
    || { echo "Redis did not start: see $DIR/server.log" >&2; exit 1; }
fi
echo "redis://127.0.0.1:${PORT}/0"
