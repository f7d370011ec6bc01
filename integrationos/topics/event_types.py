"""Stable names of every event type.

Names never change once records exist (moving or renaming a Python class must never
break replay); the schema version travels beside the name in the envelope.
"""

from __future__ import annotations

TENANT_CREATED = "tenant.created"
API_KEY_ISSUED = "tenant.api_key_issued"
API_KEY_REVOKED = "tenant.api_key_revoked"
TENANT_PLAN_CHANGED = "tenant.plan_changed"

CONNECTOR_CREATED = "connector.created"
CONNECTOR_UPDATED = "connector.updated"
CONNECTOR_DELETED = "connector.deleted"

TRANSFORMATION_CREATED = "transformation.created"
TRANSFORMATION_UPDATED = "transformation.updated"
TRANSFORMATION_DELETED = "transformation.deleted"

INTEGRATION_CREATED = "integration.created"
INTEGRATION_UPDATED = "integration.updated"
INTEGRATION_DELETED = "integration.deleted"
INTEGRATION_PROMOTED = "integration.promoted"
INTEGRATION_PAUSED = "integration.paused"
INTEGRATION_RESUMED = "integration.resumed"
INTEGRATION_ROLLED_BACK = "integration.rolled_back"
INTEGRATION_TEST_CASE_SAVED = "integration.test_case_saved"
INTEGRATION_TEST_CASE_DELETED = "integration.test_case_deleted"

MESSAGE_RECEIVED = "message.received"
MESSAGE_TRANSFORMED = "message.transformed"
MESSAGE_DELIVERED = "message.delivered"
MESSAGE_FAILED = "message.failed"
MESSAGE_DEAD_LETTERED = "message.dead_lettered"
MESSAGE_DISCARDED = "message.discarded"
MESSAGE_PARKED = "message.parked"
MESSAGE_REPLAY_REQUESTED = "message.replay_requested"
MESSAGE_REPLAYED = "message.replayed"

REPLAY_PROGRESSED = "replay.progressed"
REPLAY_COMPLETED = "replay.completed"
REPLAY_BARRIER = "replay.barrier"

SCHEMA_VERSION_ADDED = "schema.version_added"
SCHEMA_DELETED = "schema.deleted"

LOOKUP_CREATED = "lookup.created"
LOOKUP_UPDATED = "lookup.updated"
LOOKUP_ROWS_REPLACED = "lookup.rows_replaced"
LOOKUP_DELETED = "lookup.deleted"

ENVIRONMENT_VARIABLE_SET = "environment.variable_set"
ENVIRONMENT_VARIABLE_DELETED = "environment.variable_deleted"

SOURCE_CHECKPOINTED = "source.checkpointed"

ALERT_RULE_CREATED = "alert.rule_created"
ALERT_RULE_UPDATED = "alert.rule_updated"
ALERT_RULE_DELETED = "alert.rule_deleted"

ALERT_FIRED = "alert.fired"
ALERT_RESOLVED = "alert.resolved"
ALERT_NOTIFIED = "alert.notified"
