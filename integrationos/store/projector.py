"""Applies batches of log records to the tables, exactly once.

The next offset of each (topic, partition) is stored in the same transaction as the rows
it produced, so a record seen again after a crash or a rebalance is skipped, and a rebuild
from offset 0 into empty tables yields the same rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from integrationos.store.message_runs import LIFECYCLE_TYPES, apply_run
from integrationos.store.projections import apply_event
from integrationos.store.tables import projection_offsets
from integrationos.topics import codec
from integrationos.topics.envelope import Event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    value: bytes


class Projector:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def apply(self, records: Iterable[LogRecord]) -> int:
        """Apply what has not been applied yet; return how many records were applied.

        The batch is first applied in one plain transaction, consecutive message lifecycle
        events together (store/message_runs.py). Only if the tables refuse an
        event is it rolled back and applied again with a savepoint per event, so the refused
        event is skipped alone: two statements (SAVEPOINT, RELEASE) per event were a third
        of the projection's statements, paid on every batch for a rare refusal
        (docs/performance.md)."""
        batch = list(records)
        try:
            return self._apply(batch, isolated=False)
        except OperationalError:
            raise  # the database is unreachable: nothing to isolate
        except SQLAlchemyError:
            return self._apply(batch, isolated=True)

    def _apply(self, records: list[LogRecord], isolated: bool) -> int:
        applied = 0
        with self._engine.begin() as conn:
            stored = _stored_next_offsets(conn, {(r.topic, r.partition) for r in records})
            next_offsets = dict(stored)
            run: list[Event] = []  # consecutive lifecycle events, applied together
            for record in records:
                tp = (record.topic, record.partition)
                next_offsets.setdefault(tp, 0)
                if record.offset < next_offsets[tp]:
                    continue
                try:
                    event = codec.decode(record.value)
                except codec.UndecodableEvent as exc:
                    log.warning("skipping undecodable record %s[%d]@%d: %s",
                                record.topic, record.partition, record.offset, exc)
                else:
                    if isolated:
                        applied += _apply_isolated(conn, event, record)
                    elif event.type in LIFECYCLE_TYPES:
                        run.append(event)
                    else:
                        applied += _flush(conn, run)
                        apply_event(conn, event)
                        applied += 1
                next_offsets[tp] = record.offset + 1
            applied += _flush(conn, run)
            _store_next_offsets(conn, stored, next_offsets)
        return applied


def _flush(conn: Connection, run: list[Event]) -> int:
    """Apply the pending run of lifecycle events (before any other event, in log order)."""
    count = len(run)
    if run:
        apply_run(conn, run)
        run.clear()
    return count


def _apply_isolated(conn: Connection, event: Event, record: LogRecord) -> int:
    """Apply one event in a savepoint: an event the tables refuse (say, a key hash already
    taken) is logged and skipped, so it can neither stop the projection nor undo the rest
    of its batch. Returns 1 if applied."""
    savepoint = conn.begin_nested()
    try:
        apply_event(conn, event)
    except SQLAlchemyError as exc:
        savepoint.rollback()
        log.error("projection refused %s %s at %s[%d]@%d: %s", event.type, event.event_id,
                  record.topic, record.partition, record.offset, type(exc).__name__)
        return 0
    savepoint.commit()
    return 1


def _stored_next_offset(conn: Connection, topic: str, partition: int) -> int:
    row = conn.execute(
        select(projection_offsets.c.next_offset).where(
            projection_offsets.c.topic == topic, projection_offsets.c.partition == partition
        )
    ).first()
    return row.next_offset if row else 0


def _stored_next_offsets(conn: Connection, tps: set[tuple[str, int]]
                         ) -> dict[tuple[str, int], int]:
    """The stored next offsets of ``tps`` (absent: never applied), in one query: a batch
    spans up to every partition of its topic, and a query per partition was most of a small
    batch's statements (docs/performance.md)."""
    topics = {topic for topic, _ in tps}
    rows = conn.execute(select(projection_offsets).where(projection_offsets.c.topic.in_(topics)))
    return {(row.topic, row.partition): row.next_offset for row in rows
            if (row.topic, row.partition) in tps}


def _store_next_offsets(conn: Connection, stored: dict[tuple[str, int], int],
                        next_offsets: dict[tuple[str, int], int]) -> None:
    """Write the offsets that moved: one multi-row statement for those already stored, one
    for the new ones."""
    moved = [{"b_topic": topic, "b_partition": partition, "b_next": offset}
             for (topic, partition), offset in next_offsets.items()
             if (topic, partition) in stored and stored[(topic, partition)] != offset]
    new = [{"topic": topic, "partition": partition, "next_offset": offset}
           for (topic, partition), offset in next_offsets.items()
           if (topic, partition) not in stored]
    if moved:
        conn.execute(update(projection_offsets)
                     .where(projection_offsets.c.topic == bindparam("b_topic"),
                            projection_offsets.c.partition == bindparam("b_partition"))
                     .values(next_offset=bindparam("b_next")), moved)
    if new:
        conn.execute(insert(projection_offsets), new)


def applied_through(engine: Engine, topic: str, partition: int) -> int:
    """The next offset the projection will apply on (topic, partition)."""
    with engine.connect() as conn:
        return _stored_next_offset(conn, topic, partition)
