"""The projection tables. Every row is derived from events; nothing here is a source of truth.

Timestamps are epoch milliseconds (BigInteger) so SQLite and PostgreSQL compare them alike.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


def _audit() -> list[Column]:
    return [
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
    ]


tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("plan", String(20), nullable=False),
    *_audit(),
)

# A tenant's overrides of its plan's limits (``tenant.plan_changed``); a null column keeps the
# plan's value, -1 means unlimited (integrationos/plans.py).
tenant_limits = Table(
    "tenant_limits",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("messages_per_month", BigInteger, nullable=True),
    Column("requests_per_minute", Integer, nullable=True),
    Column("connectors", Integer, nullable=True),
    Column("retention_days", Integer, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
)

# Messages admitted per tenant and calendar month (UTC, "YYYY-MM"): the monthly quota.
usage_counters = Table(
    "usage_counters",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("messages", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("roles", String(200), nullable=False, default="admin"),  # comma-separated
    Column("environments", String(40), nullable=False, default="DEV,QA,PROD"),
    Column("live", Boolean, nullable=False, default=True),
    Column("revoked", Boolean, nullable=False, default=False),
    *_audit(),
)

# Written by the API, not projected from the log (a request is not an event): when each key
# was last used, at most once a minute per key and API process. Rebuilds leave it alone.
api_key_usage = Table(
    "api_key_usage",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("last_used_at", BigInteger, nullable=False),
)

connectors = Table(
    "connectors",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("connector_type", String(40), nullable=False),
    Column("config_json", Text, nullable=False),
    Column("credentials_sealed", Text, nullable=True),
    Column("version", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    *_audit(),
)

transformations = Table(
    "transformations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("source_schema", Text, nullable=True),
    Column("target_schema", Text, nullable=True),
    Column("expression", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    *_audit(),
)

transformation_versions = Table(
    "transformation_versions",
    metadata,
    Column("transformation_id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("source_schema", Text, nullable=True),
    Column("target_schema", Text, nullable=True),
    Column("expression", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

integrations = Table(
    "integrations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("environment", String(10), nullable=False),
    Column("source_connector_id", String(40), nullable=True),
    Column("target_connector_id", String(40), nullable=True),
    Column("transformation_id", String(40), nullable=True),
    Column("transformation_version", Integer, nullable=True),
    Column("expression", Text, nullable=True),
    Column("error_strategy", String(40), nullable=False),
    # The integration's own backoff (all three set, or all null: the platform defaults).
    Column("backoff_initial_ms", Integer, nullable=True),
    Column("backoff_max_ms", Integer, nullable=True),
    Column("backoff_multiplier", Float, nullable=True),
    Column("status", String(20), nullable=False),
    # Why it is PAUSED (null while ACTIVE): USER, or FAIL_FAST with the message that failed.
    Column("paused_reason", String(20), nullable=True),
    Column("paused_message_id", String(64), nullable=True),
    Column("paused_code", String(60), nullable=True),
    Column("paused_message", Text, nullable=True),
    Column("paused_at", BigInteger, nullable=True),
    Column("version", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    *_audit(),
)

integration_versions = Table(
    "integration_versions",
    metadata,
    # Every version of every integration, immutable: what promotion copies and rollback
    # restores. ``definition_json`` is the state as its event carried it.
    Column("integration_id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("environment", String(10), nullable=False),
    Column("name", String(200), nullable=False),
    Column("definition_json", Text, nullable=False),
    Column("origin", String(20), nullable=False),  # CREATED UPDATED PROMOTED ROLLED_BACK
    Column("promoted_from_id", String(40), nullable=True),
    Column("promoted_from_version", Integer, nullable=True),
    Column("restored_version", Integer, nullable=True),
    Column("created_by", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

integration_lineages = Table(
    "integration_lineages",
    metadata,
    # The integration a promoted one descends from, through every stage (the DEV
    # integration's id). Integrations absent here are their own lineage.
    Column("integration_id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("lineage_id", String(40), nullable=False, index=True),
)

integration_history = Table(
    "integration_history",
    metadata,
    # The audit log of an integration, in log order (``seq``).
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), nullable=False),
    Column("integration_id", String(40), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("event_type", String(60), nullable=False),
    Column("version", Integer, nullable=True),
    Column("actor", String(200), nullable=True),
    Column("details_json", Text, nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Index("ix_integration_history", "integration_id", "seq"),
    Index("ux_integration_history_event", "event_id", "integration_id", unique=True),
)

integration_test_cases = Table(
    "integration_test_cases",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("lineage_id", String(40), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("payload_json", Text, nullable=False),
    Column("expected_json", Text, nullable=False),
    Column("match", String(10), nullable=False),
    Column("created_by", String(200), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    *_audit(),
)

connector_bindings = Table(
    "connector_bindings",
    metadata,
    # Which connector of ``environment`` replaces a connector of the stage before, for one
    # lineage: remembered from the last promotion, so the next one needs no new mapping.
    Column("tenant_id", String(64), primary_key=True),
    Column("lineage_id", String(40), primary_key=True),
    Column("environment", String(10), primary_key=True),
    Column("from_connector_id", String(40), primary_key=True),
    Column("to_connector_id", String(40), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("integration_id", String(40), nullable=True),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("message_key", String(400), nullable=True),
    Column("source", String(400), nullable=False),
    Column("payload_json", Text, nullable=True),
    Column("output_json", Text, nullable=True),
    Column("last_error_code", String(60), nullable=True),
    Column("last_error_message", Text, nullable=True),
    Column("received_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The replay that last sent the message again (null if never replayed).
    Column("replay_id", String(40), nullable=True, index=True),
    Index("ix_messages_integration_status", "tenant_id", "integration_id", "status"),
)

message_events = Table(
    "message_events",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("message_id", String(64), nullable=False, index=True),
    Column("tenant_id", String(64), nullable=False),
    Column("event_type", String(60), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("data_json", Text, nullable=False),
    # The W3C trace context the event carried (its envelope's): the lineage's trace id.
    Column("traceparent", String(200), nullable=True),
)

dlq_entries = Table(
    "dlq_entries",
    metadata,
    # ``id`` is the message id and ``created_at`` the dead-letter time: the names the shared
    # keyset pagination (api/db.page) orders by.
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("integration_id", String(40), nullable=True),
    Column("status", String(20), nullable=False),
    Column("stage", String(40), nullable=False),
    Column("code", String(60), nullable=False),
    Column("message", Text, nullable=False),
    Column("dlq_topic", String(200), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("traceparent", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("discarded_at", BigInteger, nullable=True),
    Column("discard_reason", Text, nullable=True),
    Column("replay_id", String(40), nullable=True),
    Index("ix_dlq_entries_listing", "tenant_id", "status", "created_at", "id"),
)

replays = Table(
    "replays",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("integration_id", String(40), nullable=True),
    Column("status", String(20), nullable=False),
    Column("selection_json", Text, nullable=False),
    Column("total", BigInteger, nullable=True),
    Column("sent", BigInteger, nullable=False),
    Column("skipped", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger, nullable=True),
    Index("ix_replays_tenant", "tenant_id", "created_at", "id"),
)

schemas = Table(
    "schemas",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("format", String(20), nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("compatibility", String(20), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    *_audit(),
)

schema_versions = Table(
    "schema_versions",
    metadata,
    Column("schema_id", String(40), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("definition", Text, nullable=False),
    Column("examples_json", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

lookups = Table(
    "lookups",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("lookup_type", String(20), nullable=False),
    Column("config_json", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("rows_version", Integer, nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    *_audit(),
)

lookup_rows = Table(
    "lookup_rows",
    metadata,
    Column("lookup_id", String(40), primary_key=True),
    Column("rows_version", Integer, primary_key=True),
    Column("key", String(400), primary_key=True),
    Column("value_json", Text, nullable=False),
)

environment_variables = Table(
    "environment_variables",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("environment", String(10), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

source_checkpoints = Table(
    "source_checkpoints",
    metadata,
    Column("integration_id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("connector_id", String(40), nullable=False),
    Column("checkpoint", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Alert rules (``alert.rule_*`` on the config topic). ``condition_json`` and
# ``channels_json`` are the API's validated JSON; ``secret_sealed`` is the webhook signing
# secret as AES-256-GCM ciphertext (store/projections.seal_to_text), never plain text.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("condition_type", String(20), nullable=False),
    Column("condition_json", Text, nullable=False),
    Column("channels_json", Text, nullable=False),
    Column("repeat_interval_s", BigInteger, nullable=False),
    Column("secret_sealed", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    *_audit(),
)

# Alerts (``alert.fired`` / ``alert.resolved`` on the alerts topic): ``created_at`` is when it
# fired, the name the shared keyset pagination orders by.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("rule_id", String(40), nullable=False, index=True),
    Column("rule_name", String(200), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("condition_type", String(20), nullable=False),
    Column("integration_id", String(40), nullable=True),
    Column("connector_id", String(40), nullable=True),
    Column("state", String(10), nullable=False),  # FIRING, RESOLVED
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("summary", Text, nullable=False),
    Column("resolved_summary", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("last_notified_at", BigInteger, nullable=True),
    Index("ix_alerts_listing", "tenant_id", "state", "created_at", "id"),
)

# Every notification attempt round of an alert (``alert.notified``): what was sent where,
# and whether it arrived.
alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("alert_id", String(40), nullable=False, index=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(10), nullable=False),  # FIRED, RESOLVED, REPEAT
    Column("channel", String(400), nullable=False),
    Column("outcome", String(10), nullable=False),  # SENT, FAILED
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("occurred_at", BigInteger, nullable=False),
)

projection_offsets = Table(
    "projection_offsets",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

PROJECTED_TABLES = (
    tenants, tenant_limits, usage_counters, api_keys, connectors, transformations,
    transformation_versions, integrations,
    messages, message_events, dlq_entries, schemas, schema_versions, lookups, lookup_rows,
    environment_variables, source_checkpoints, replays, integration_versions,
    integration_lineages, integration_history, integration_test_cases, connector_bindings,
    alert_rules, alerts, alert_notifications,
)
