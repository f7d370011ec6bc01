"""Python SDK of the IntegrationOS API: ``IntegrationPlatform`` and
``AsyncIntegrationPlatform``, typed responses, retries, lazy pages, NDJSON streaming,
webhook signatures (``integration_platform.webhooks``)."""

from integration_platform import webhooks
from integration_platform._client import AsyncIntegrationPlatform, IntegrationPlatform
from integration_platform._core import NOT_GIVEN
from integration_platform._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IntegrationPlatformError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
)
from integration_platform._models import (
    Connector,
    DlqEntry,
    HealthReport,
    Integration,
    IntegrationStatus,
    Message,
    MessageAccepted,
    Model,
    PreviewResult,
    Record,
    Replay,
    SandboxResult,
    StreamResult,
    Transformation,
    Usage,
)
from integration_platform._pagination import AsyncPager, Page, SyncPager
from integration_platform._retry import RetryPolicy
from integration_platform._version import __version__

__all__ = [
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "AsyncIntegrationPlatform",
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "Connector",
    "DlqEntry",
    "HealthReport",
    "Integration",
    "IntegrationPlatform",
    "IntegrationPlatformError",
    "IntegrationStatus",
    "InternalServerError",
    "Message",
    "MessageAccepted",
    "Model",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "PreviewResult",
    "RateLimitError",
    "Record",
    "Replay",
    "RetryPolicy",
    "SandboxResult",
    "StreamResult",
    "SyncPager",
    "Transformation",
    "Usage",
    "ValidationError",
    "__version__",
    "webhooks",
]
