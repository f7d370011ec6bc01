"""One typed settings object, read from the environment once.

The same variable names are used by the dev launcher, the tests and
`docker-compose.yml`, so a deployment is described by its environment alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    """Runtime configuration of every IntegrationOS process."""

    data_dir: Path
    kafka_bootstrap: str
    topic_prefix: str
    database_url: str
    api_host: str
    api_port: int
    worker_id: str
    master_key: str = field(repr=False)
    max_payload_bytes: int
    projection_wait_seconds: float
    ingest_partitions: int
    # The shared rate-limit counter of several API replicas; empty: counted in-process.
    redis_url: str = field(default="", repr=False)
    # How often a worker looks for quota-parked messages the quota now allows.
    quota_release_seconds: float = 60.0
    # How often the evaluating worker checks the alert rules (docs/alerts.md).
    alert_interval_seconds: float = 30.0
    # Bearer tokens (optional): an HS256 secret and/or a JWKS (file path or https URL) of
    # RS256/ES256 public keys; aud and iss are required in tokens when configured.
    jwt_hs256_secret: str = field(default="", repr=False)
    jwt_jwks: str = ""
    jwt_audience: str = ""
    jwt_issuer: str = ""
    # A worker's own /metrics (Prometheus); 0: none. Off by default so that several workers
    # on one host never fight over a port: set one port per worker (or per container).
    worker_metrics_port: int = 0
    worker_metrics_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("IOS_DATA_DIR", ".integrationos")).resolve()
        return cls(
            data_dir=data_dir,
            kafka_bootstrap=_env("IOS_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            topic_prefix=_env("IOS_TOPIC_PREFIX", "ios"),
            database_url=_env("DATABASE_URL", f"sqlite:///{data_dir / 'integrationos.db'}"),
            api_host=_env("IOS_API_HOST", "127.0.0.1"),
            api_port=int(_env("IOS_API_PORT", "8080")),
            worker_id=_env("IOS_WORKER_ID", "worker-1"),
            master_key=os.environ.get("IOS_MASTER_KEY", ""),
            max_payload_bytes=int(_env("IOS_MAX_PAYLOAD_BYTES", str(1024 * 1024))),
            projection_wait_seconds=float(_env("IOS_PROJECTION_WAIT_SECONDS", "10")),
            ingest_partitions=int(_env("IOS_INGEST_PARTITIONS", "6")),
            redis_url=os.environ.get("IOS_REDIS_URL", "").strip(),
            quota_release_seconds=float(_env("IOS_QUOTA_RELEASE_SECONDS", "60")),
            alert_interval_seconds=float(_env("IOS_ALERT_INTERVAL_SECONDS", "30")),
            jwt_hs256_secret=os.environ.get("IOS_JWT_HS256_SECRET", ""),
            jwt_jwks=_env("IOS_JWT_JWKS", ""),
            jwt_audience=_env("IOS_JWT_AUDIENCE", ""),
            jwt_issuer=_env("IOS_JWT_ISSUER", ""),
            worker_metrics_port=int(_env("IOS_WORKER_METRICS_PORT", "0")),
            worker_metrics_host=_env("IOS_WORKER_METRICS_HOST", "127.0.0.1"),
        )
