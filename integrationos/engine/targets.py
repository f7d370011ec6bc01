"""Live target connectors, one instance per connector version, reused across messages.

Reuse keeps HTTP connection pools and Kafka producers warm; a new connector version (an
update through the API) gets a fresh instance and the old one is closed.
"""

from __future__ import annotations

from integrationos.connectors import registry
from integrationos.connectors.base import Connector
from integrationos.connectors.credentials import CredentialVault
from integrationos.engine.catalog import TargetRef
from integrationos.store.projections import sealed_from_text


class TargetPool:
    def __init__(self, vault: CredentialVault) -> None:
        self._vault = vault
        self._live: dict[str, tuple[int, Connector]] = {}

    async def get(self, ref: TargetRef) -> Connector:
        live = self._live.get(ref.connector_id)
        if live is not None and live[0] == ref.version:
            return live[1]
        sealed = sealed_from_text(ref.credentials_sealed)
        credentials = self._vault.open(sealed) if sealed else {}
        connector = registry.build(ref.connector_type, ref.config, credentials)
        self._live[ref.connector_id] = (ref.version, connector)
        if live is not None:
            await live[1].close()
        return connector

    async def close(self) -> None:
        for _, connector in self._live.values():
            await connector.close()
        self._live.clear()
