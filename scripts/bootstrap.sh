#!/usr/bin/env bash
# Creates .venv and installs the project with its test tools. Idempotent and quick when
# nothing changed. Needs Python 3.11+, and for the broker Java 17+ and Maven.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
command -v java >/dev/null || { echo "Java 17+ is needed for the Kafka broker" >&2; exit 1; }
command -v mvn >/dev/null || { echo "Maven is needed to fetch the Kafka broker" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
STAMP=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$STAMP" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,postgres,bench]"
  rm -f .venv/.installed-* && touch "$STAMP"
fi
