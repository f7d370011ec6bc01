"""Engine creation for the read side: SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from integrationos.store.tables import metadata


def open_database(url: str) -> Engine:
    """Create the engine and the tables (idempotent)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # A pool as large as the API's thread pool can use at once (anyio's 40 threads):
        # with SQLAlchemy's default 5 (+10 overflow), a loaded API opened and closed an
        # overflow connection per request, re-running the pragmas each time, and threads
        # queued for a connection (docs/performance.md). SQLite connections are cheap.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=40, max_overflow=10)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    metadata.create_all(engine)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """WAL lets the API read while a worker writes; NORMAL sync is safe under WAL."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
