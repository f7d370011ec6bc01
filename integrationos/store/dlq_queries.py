"""Which dead-letter entries a filter selects: one definition for the listing
(``GET /v1/dlq``) and for a filtered replay, so a replay sends exactly what the user saw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from integrationos.store.tables import dlq_entries

DEAD_LETTERED = "DEAD_LETTERED"


@dataclass(frozen=True)
class DlqFilter:
    """All optional, combined with AND; times are epoch ms, inclusive."""

    integration_id: str | None = None
    code: str | None = None
    text: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"integrationId": self.integration_id, "code": self.code, "q": self.text,
                "from": self.since_ms, "to": self.until_ms}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DlqFilter:
        return cls(data.get("integrationId"), data.get("code"), data.get("q"),
                   data.get("from"), data.get("to"))


def dead_lettered(tenant_id: str, wanted: DlqFilter) -> Select[Any]:
    """The tenant's entries still waiting in the DLQ that ``wanted`` keeps."""
    statement = select(dlq_entries).where(dlq_entries.c.tenant_id == tenant_id,
                                          dlq_entries.c.status == DEAD_LETTERED)
    if wanted.integration_id is not None:
        statement = statement.where(dlq_entries.c.integration_id == wanted.integration_id)
    if wanted.code is not None:
        statement = statement.where(dlq_entries.c.code == wanted.code)
    if wanted.text is not None:
        statement = statement.where(dlq_entries.c.message.icontains(wanted.text,
                                                                    autoescape=True))
    if wanted.since_ms is not None:
        statement = statement.where(dlq_entries.c.created_at >= wanted.since_ms)
    if wanted.until_ms is not None:
        statement = statement.where(dlq_entries.c.created_at <= wanted.until_ms)
    return statement
