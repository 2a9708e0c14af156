"""The Akool API as data (registry, models) and one client, sync and async.

Knows nothing of pandas, Airflow or widgets.
"""

from akool_flows.api.client import (
    DEFAULT_BASE_URL,
    DEFAULT_DETECT_URL,
    AkoolClient,
    AsyncAkoolClient,
    RetryPolicy,
)
from akool_flows.api.endpoints import FaceDetection
from akool_flows.api.errors import (
    AkoolAPIError,
    AkoolError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    QuotaError,
    RateLimitError,
    TransportError,
    UnknownKindError,
    ValidationError,
)
from akool_flows.api.jobs import Job, JobStatus
from akool_flows.api.kinds import KINDS, JobKind, get_kind, kind_names

__all__ = [
    "DEFAULT_BASE_URL", "DEFAULT_DETECT_URL", "AkoolClient", "AsyncAkoolClient", "RetryPolicy",
    "FaceDetection", "AkoolAPIError", "AkoolError", "AuthenticationError", "BadRequestError",
    "ConnectError", "JobFailedError", "JobTimeoutError", "NotFoundError", "QuotaError", "RateLimitError",
    "TransportError", "UnknownKindError", "ValidationError", "Job", "JobStatus", "KINDS", "JobKind",
    "get_kind", "kind_names",
]
