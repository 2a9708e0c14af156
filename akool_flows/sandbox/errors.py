"""Business errors the sandbox answers with (HTTP 200, ``{"code": ..., "msg": ...}``, as Akool does)."""

from __future__ import annotations

__all__ = ["MESSAGES", "NOT_FOUND", "PARAM_ERROR", "ApiError"]

PARAM_ERROR = 1003
NOT_FOUND = 1008

# Messages from the docs' ErrorCode table and per-page code tables.
MESSAGES: dict[int, str] = {
    1003: "Parameter error or Parameter can not be empty",
    1005: "Operation is too frequent",
    1006: "Your quota is not enough",
    1007: "The number of people who can have their faces changed cannot exceed 8",
    1008: "The content you get does not exist",
    1010: "You can not operate this content",
    1011: "This content has been operated",
    1101: "Invalid authorization or The request token has expired",
    1102: "Authorization cannot be empty",
    1202: "The same video cannot be translated lipSync in the same language more than 1 times",
    1219: "liveAvatar closed",
    1222: "Resource already exist",
}


class ApiError(Exception):
    """Raised by a handler to answer ``{"code": code, "msg": msg}``; the server turns it into JSON."""

    def __init__(self, code: int, msg: str | None = None) -> None:
        self.code = code
        self.msg = msg or MESSAGES.get(code, "Error")
        super().__init__(f"{code}: {self.msg}")


def param_error(detail: str) -> ApiError:
    """A 1003 whose message names the field and what is allowed."""
    return ApiError(PARAM_ERROR, f"Parameter error: {detail}")
