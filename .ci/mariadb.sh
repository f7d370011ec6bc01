#!/usr/bin/env bash
# Starts a throwaway MariaDB (Debian's package) on 127.0.0.1:${IOS_TEST_MARIADB_PORT:-33069}
# for the JDBC connector tests, and prints its URL (user iostest, with a password, over TCP).
# Installs the package if it is missing; a server already answering on the port is reused.
set -euo pipefail
PORT="${IOS_TEST_MARIADB_PORT:-33069}"
DIR="${IOS_TEST_MARIADB_DIR:-/tmp/integrationos-mariadb}"
PASSWORD="iostest-pw"
if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    mariadb-server mariadb-client >&2
  # The package starts the system service; the tests use their own server only.
  service mariadb stop >/dev/null 2>&1 || true
fi
answers() {
  mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$PORT" -u iostest -p"$PASSWORD" ping >/dev/null 2>&1
}
if ! answers; then
  rm -rf "$DIR" && mkdir -p "$DIR" && chown mysql:mysql "$DIR"
  mariadb-install-db --user=mysql --datadir="$DIR/data" --auth-root-authentication-method=socket \
    --skip-test-db >"$DIR/install.log" 2>&1
  # Detached so the server outlives this script, like `pg_ctl start`.
  setsid mariadbd --user=mysql --datadir="$DIR/data" --socket="$DIR/mysqld.sock" \
    --pid-file="$DIR/mysqld.pid" --bind-address=127.0.0.1 --port="$PORT" \
    --skip-name-resolve --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=64M \
    --max-connections=300 --log-error="$DIR/server.log" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    [ -S "$DIR/mysqld.sock" ] && mariadb-admin --socket="$DIR/mysqld.sock" ping >/dev/null 2>&1 \
      && break
    sleep 0.2
  done
  mariadb --socket="$DIR/mysqld.sock" -u root <<SQL
CREATE USER IF NOT EXISTS 'iostest'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO 'iostest'@'127.0.0.1' WITH GRANT OPTION;
SQL
  answers || { echo "MariaDB did not start: see $DIR/server.log" >&2; exit 1; }
fi
echo "mariadb://iostest:${PASSWORD}@127.0.0.1:${PORT}/mysql"
