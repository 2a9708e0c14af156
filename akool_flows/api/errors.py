"""Akool failures as typed exceptions.

Akool answers HTTP 200 with a business ``code`` other than 1000 when a call fails (face detect
uses ``error_code`` != 0 instead). Each documented code maps to an exception class, and every
class says whether the failure is worth retrying. The batch engine needs one more distinction:
whether a failed *create* call can have created a paid job (``may_have_created``).
"""

from __future__ import annotations

from typing import Any

from akool_flows.api.redact import redact_urls_in

# The docs' ErrorCode table (plus per-page descriptions where they are clearer).
ERROR_CODES: dict[int, str] = {
    1000: "Success",
    1003: "Parameter error",
    1004: "Requires verification",
    1005: "Frequent operation",
    1006: "Insufficient quota balance",
    1007: "Face count changes exceed",
    1008: "content not exist",
    1009: "permission denied",
    1010: "This content cannot be operated",
    1011: "This content has been operated",
    1013: "Use audio in video",
    1014: "Resource does not exist",
    1015: "Video processing error",
    1016: "Face swapping error",
    1017: "Audio not created",
    1101: "Illegal token",
    1102: "token cannot be empty",
    1103: "Not paid or payment is overdue",
    1104: "Insufficient credit balance",
    1105: "avatar processing error",
    1108: "image processing error",
    1109: "account not exist",
    1110: "audio processing error",
    1111: "avatar callback processing error",
    1112: "voice processing error",
    1200: "Account blocked",
    1201: "create audio processing error",
    1202: "Video lip sync same language out of range",
    1203: "Using Video and Audio",
    1204: "video duration exceed",
    1205: "create video processing error",
    1206: "background change processing error",
    1207: "video size exceed",
    1208: "video parsing error",
    1209: "The video encoding format is not supported",
    1210: "video fps exceed",
    1211: "Creating lip sync errors",
    1212: "Sentiment analysis fails",
    1213: "Requires subscription user to use",
    1214: "liveAvatar in processing",
    1215: "liveAvatar processing is busy",
    1216: "liveAvatar session not exist",
    1217: "liveAvatar callback error",
    1218: "liveAvatar processing error",
    1219: "liveAvatar closed",
    1220: "liveAvatar upload avatar error",
    1221: "Account not subscribed",
    1222: "Resource already exist",
    1223: "liveAvatar upload exceed",
}


class AkoolError(Exception):
    """Base of everything akool_flows raises about the API."""

    retryable: bool = False
    #: For a failed create call: could Akool have created (and charged) the job anyway?
    may_have_created: bool = False

    def __init__(self, message: str, *, code: int | None = None, endpoint: str | None = None,
                 http_status: int | None = None, retry_after: float | None = None) -> None:
        # Messages quote user input and Akool's own text, either of which can hold a URL with a
        # password, a signature or a webhook path token; no exception text may carry those.
        self.message = redact_urls_in(message)
        self.code = code
        self.endpoint = endpoint
        self.http_status = http_status
        #: Seconds the server asked us to wait (``Retry-After`` on a 429 or 503), if it said.
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.code is not None:
            parts.append(f"[{self.code}]")
        if self.http_status not in (None, 200) and not self.message.startswith("HTTP "):
            parts.append(f"HTTP {self.http_status}:")
        parts.append(self.message)
        if self.endpoint:
            parts.append(f"({self.endpoint})")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "code": self.code, "message": self.message,
                "endpoint": self.endpoint, "http_status": self.http_status}


class ValidationError(AkoolError, ValueError):
    """Bad input caught before any HTTP call (nothing was sent, nothing was spent)."""

    def __init__(self, message: str, *, field: str | None = None, kind: str | None = None) -> None:
        self.field = field
        self.kind = kind
        super().__init__(message)


class UnknownKindError(ValidationError):
    """A job kind that is not in the registry."""


# --- business errors (code != 1000, usually on HTTP 200, also on 4xx) -----------------------------

class AkoolAPIError(AkoolError):
    """Akool refused or failed the call with a business code."""


class BadRequestError(AkoolAPIError):
    """1003 and other 'your input is wrong' codes. Not retryable."""


class QuotaError(AkoolAPIError):
    """Not enough credits / quota (1006, 1104). Not retryable until the account is topped up."""


class AuthenticationError(AkoolAPIError):
    """Token missing, invalid or expired (1101, 1102, or HTTP 401)."""


class PermissionDeniedError(AkoolAPIError):
    """Banned, unpaid, not subscribed or not allowed (1009, 1103, 1200, 1213, 1221)."""


class NotFoundError(AkoolAPIError):
    """The content or resource does not exist (1008, 1014, 1109, 1216)."""


class ConflictError(AkoolAPIError):
    """The content cannot be operated or already was (1010, 1011, 1222, 1219)."""


class ProcessingError(AkoolAPIError):
    """Akool could not process the media (1013, 1016, 1105, 1108, ...). Not retryable as is."""


class RateLimitError(AkoolAPIError):
    """1005 'operation too frequent' or HTTP 429. The request was refused, nothing was created."""

    retryable = True


class TemporaryError(AkoolAPIError):
    """Codes the docs pair with 'please try again later' (1015, 1201, 1205, 1211, 1215, ...).

    Akool answered with a business code: the request was processed and refused, so no job exists.
    """

    retryable = True


# --- transport errors ---------------------------------------------------------------------------

class TransportError(AkoolError):
    """The HTTP exchange itself failed.

    Once a request may have reached the server, any failure to read a well-formed answer leaves
    the job's existence unknown, so this class (and every catch-all mapped to it) says
    ``may_have_created``. Only `ConnectError` proves the request never left.
    """

    retryable = True
    may_have_created = True


class ConnectError(TransportError):
    """The connection never opened (refused, DNS, connect or pool timeout, TLS handshake): the
    request was not sent, so nothing can have been created."""

    may_have_created = False


class RequestTimeoutError(TransportError):
    """No (complete) answer in time. The request may have been processed."""


class ConnectionDroppedError(TransportError):
    """The connection broke after the request was sent. It may have been processed."""


class ServerError(TransportError):
    """HTTP 5xx. The server may have processed the request before failing."""


class HTTPStatusError(TransportError):
    """A 4xx HTTP status without an Akool business code (other than 401 and 429): the request
    was refused before processing."""

    retryable = False
    may_have_created = False


class MalformedResponseError(TransportError):
    """The answer was not a well-formed HTTP answer carrying the JSON envelope Akool sends.
    The request may have been processed."""


class JobFailedError(AkoolError):
    """A job reached status 4 (failed)."""

    def __init__(self, message: str, *, job_id: str, kind: str, code: int | None = None,
                 status: Any = None) -> None:
        self.job_id = job_id
        self.kind = kind
        self.status = status
        super().__init__(message, code=code, endpoint=kind)


class JobTimeoutError(AkoolError):
    """`wait` gave up before the job reached a terminal status. The job may still finish."""

    def __init__(self, message: str, *, job_id: str, kind: str, last_status: Any = None) -> None:
        self.job_id = job_id
        self.kind = kind
        self.last_status = last_status
        super().__init__(message, endpoint=kind)


_RETRYABLE_CODES = {1005, 1015, 1201, 1205, 1211, 1214, 1215, 1217, 1218}
_CODE_CLASSES: dict[int, type[AkoolAPIError]] = {
    1003: BadRequestError, 1004: PermissionDeniedError, 1007: BadRequestError,
    1006: QuotaError, 1104: QuotaError, 1223: QuotaError,
    1101: AuthenticationError, 1102: AuthenticationError,
    1009: PermissionDeniedError, 1103: PermissionDeniedError, 1200: PermissionDeniedError,
    1213: PermissionDeniedError, 1221: PermissionDeniedError,
    1008: NotFoundError, 1014: NotFoundError, 1109: NotFoundError, 1216: NotFoundError,
    1010: ConflictError, 1011: ConflictError, 1219: ConflictError, 1222: ConflictError,
    1202: BadRequestError, 1203: BadRequestError, 1204: BadRequestError, 1207: BadRequestError,
    1209: BadRequestError, 1210: BadRequestError,
    1005: RateLimitError,
}


def error_class_for(code: int) -> type[AkoolAPIError]:
    """The exception class for an Akool business code (unknown codes -> ProcessingError)."""
    if code in _CODE_CLASSES:
        return _CODE_CLASSES[code]
    if code in _RETRYABLE_CODES:
        return TemporaryError
    return ProcessingError


def error_from_code(code: int, message: str | None, endpoint: str | None, *, http_status: int = 200,
                    retry_after: float | None = None) -> AkoolAPIError:
    """Build the typed exception for a business-code failure."""
    msg = (message or "").strip() or ERROR_CODES.get(code, "Akool error")
    return error_class_for(code)(msg, code=code, endpoint=endpoint, http_status=http_status,
                                 retry_after=retry_after)


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, AkoolError) and exc.retryable


def create_may_have_happened(exc: BaseException) -> bool:
    """True when a failed create call leaves the job's existence unknown (do not resubmit blindly)."""
    if isinstance(exc, AkoolError):
        return exc.may_have_created
    # Anything unexpected (a bug, a cancel mid-flight) after sending: assume it may exist.
    return True
