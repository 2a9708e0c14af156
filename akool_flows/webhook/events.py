"""The decrypted content of an Akool webhook, normalised across job kinds.

Akool's callback payload is documented as ``{_id, status, type, url}``, but field names drift
between job kinds (status endpoints use ``video_status`` / ``image_status`` /
``faceswap_status``, results ``video`` / ``image`` / ``audio_url`` ...). ``WebhookEvent``
reads whichever is present so downstream code sees one shape, and keeps ``raw`` for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from akool_flows.api.kinds import KINDS
from akool_flows.webhook.errors import WebhookVerificationError

__all__ = ["STATE_NAMES", "TERMINAL_STATUSES", "WebhookEvent"]

# Akool's job lifecycle: 1 queueing, 2 processing, 3 completed, 4 failed.
STATE_NAMES: dict[int, str] = {1: "queued", 2: "processing", 3: "completed", 4: "failed"}
TERMINAL_STATUSES: frozenset[int] = frozenset({3, 4})

# First match wins. `_id` is what every create call returns and what status lookups take,
# so it leads; face swap payloads also carry a `job_id` that is NOT the lookup id.
_ID_FIELDS = ("_id", "video_id", "image_id", "task_id", "id", "job_id")


def _registry_fields(attr: str) -> tuple[str, ...]:
    """Every kind's status-payload field names of one sort, in registry order, once each."""
    return tuple(dict.fromkeys(name for kind in KINDS.values() for name in getattr(kind, attr)))


# The docs' callback body is ``{_id, status, type, url}``; a kind's callback may carry its status
# payload's names instead, which the registry knows. The last names are in no status payload of
# the registry: payloads that name the result after its media (``audio_url``...) still read.
_STATUS_FIELDS = tuple(dict.fromkeys(("status", *_registry_fields("status_fields"), "audio_status",
                                      "task_status")))
_URL_FIELDS = tuple(dict.fromkeys(("url", *_registry_fields("result_fields"), "video_url", "image_url",
                                   "audio_url", "resource_url")))
_ERROR_MESSAGE_FIELDS = ("error_reason", "error_msg", "error_message", "msg", "message", "reason")
_ERROR_CODE_FIELDS = ("error_code", "code")

_MAX_ID_LEN = 256


def _first(payload: Mapping[str, Any], names: tuple[str, ...], of: type | None = None) -> Any:
    for name in names:
        value = payload.get(name)
        if value is not None and value != "" and (of is None or isinstance(value, of)):
            return value
    return None


def _coerce_status(value: Any) -> int:
    # bool is an int subclass: `True` must not read as status 1.
    if isinstance(value, bool):
        raise WebhookVerificationError("payload status is not an integer 1-4")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value not in STATE_NAMES:
        raise WebhookVerificationError("payload status is not an integer 1-4")
    return value


def _coerce_job_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise WebhookVerificationError("payload job id is not a string")
    text = str(value)
    if not text or len(text) > _MAX_ID_LEN or not text.isprintable():
        raise WebhookVerificationError("payload job id is empty, too long or not printable")
    return text


def _error_message(payload: Mapping[str, Any]) -> str | None:
    value = _first(payload, _ERROR_MESSAGE_FIELDS)
    if value is None:
        # Some status payloads carry a list of reasons instead of one message.
        reasons = payload.get("error_reasons")
        if isinstance(reasons, list) and reasons:
            return "; ".join(str(r) for r in reasons)
        return None
    return str(value)


class WebhookEvent(BaseModel):
    """One verified, decrypted Akool callback.

    Build one with :meth:`from_payload` (or get one from
    :func:`akool_flows.webhook.verify_and_decrypt`); the fields below are normalised,
    ``raw`` is the decrypted JSON object exactly as received.
    """

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(description="The job's `_id` (what the create call returned).")
    status: int = Field(ge=1, le=4, description="1 queueing, 2 processing, 3 completed, 4 failed.")
    type: str | None = Field(default=None, description="Akool's job type label, e.g. 'faceswap'.")
    url: str | None = Field(default=None, description="Result URL (set when status is 3).")
    error_message: str | None = None
    error_code: int | str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
    timestamp: int | None = Field(default=None, description="Sender's timestamp, ms since epoch.")
    nonce: str | None = None
    signature: str | None = None

    @property
    def state(self) -> Literal["queued", "processing", "completed", "failed"]:
        """``status`` as a word: queued / processing / completed / failed."""
        return STATE_NAMES[self.status]  # type: ignore[return-value]

    @property
    def is_terminal(self) -> bool:
        """True once the job has completed or failed (no further events expected)."""
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_payload(
        cls,
        payload: Mapping[str, Any],
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
        signature: str | None = None,
    ) -> WebhookEvent:
        """Normalise a decrypted payload; raise ``WebhookVerificationError`` if it has no
        usable job id or status (such an event cannot be attributed to a job)."""
        if not isinstance(payload, Mapping):
            raise WebhookVerificationError("payload is not a JSON object")
        raw_id = _first(payload, _ID_FIELDS)
        if raw_id is None:
            raise WebhookVerificationError("payload has no job id")
        raw_status = _first(payload, _STATUS_FIELDS)
        if raw_status is None:
            raise WebhookVerificationError("payload has no status")
        status = _coerce_status(raw_status)
        kind = payload.get("type")
        url = _first(payload, _URL_FIELDS, str)  # a list field (upscaled_urls) is not the URL
        # Error fields only mean something on a failed job: a completed payload's
        # `msg: "OK"` or `error_code: 0` is not an error.
        message: str | None = None
        code: Any = None
        if status == 4:
            message = _error_message(payload)
            code = _first(payload, _ERROR_CODE_FIELDS)
            if isinstance(code, bool) or not isinstance(code, (int, str, type(None))):
                code = str(code)
        return cls(
            job_id=_coerce_job_id(raw_id),
            status=status,
            type=str(kind) if kind is not None else None,
            url=url if isinstance(url, str) else None,
            error_message=message,
            error_code=code,
            raw=dict(payload),
            timestamp=timestamp,
            nonce=nonce,
            signature=signature,
        )
