"""Idempotent creation of the declared topics (the broker never auto-creates them)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from integrationos.topics.catalog import ALL_TOPICS, TopicSpec


def ensure_topics(
    bootstrap: str, prefix: str, specs: tuple[TopicSpec, ...] = ALL_TOPICS, timeout: float = 30
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [
        NewTopic(
            spec.name(prefix),
            num_partitions=spec.partitions,
            replication_factor=-1,
            config={"retention.ms": str(spec.retention_ms),
                    "cleanup.policy": "compact" if spec.compacted else "delete"},
        )
        for spec in specs
        if spec.name(prefix) not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return created
