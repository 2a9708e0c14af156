"""Field checks for request bodies and queries; each failure is a 1003 naming field and rule.

These checks are written from the docs, not from the client's pydantic models
(``akool_flows.api.models``), on purpose: a sandbox that validated with the client's own
models would accept whatever the client gets wrong.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from akool_flows.sandbox.errors import ApiError, param_error

__all__ = [
    "boolean",
    "face_list",
    "id_list",
    "integer",
    "number",
    "one_of",
    "query_int",
    "size_string",
    "string",
    "url",
]

_MISSING = object()
_SIZE_RE = re.compile(r"^([1-9]\d{0,5})x([1-9]\d{0,5})$")
_OPTS_RE = re.compile(r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?(:-?\d+(\.\d+)?,-?\d+(\.\d+)?)*$")
MAX_FACES = 8


def _get(body: Mapping[str, Any], name: str, required: bool) -> Any:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None or (isinstance(value, str) and value == ""):
        if required:
            raise param_error(f"{name} is required")
        return _MISSING
    return value


def string(body: Mapping[str, Any], name: str, *, required: bool = True, max_length: int | None = None,
           allow_empty: bool = False) -> str | None:
    """A string field (``allow_empty`` keeps ``""`` instead of treating it as missing)."""
    if allow_empty and body.get(name) == "":
        return ""
    value = _get(body, name, required)
    if value is _MISSING:
        return None
    if not isinstance(value, str):
        raise param_error(f"{name} must be a string, got {type(value).__name__}")
    if max_length is not None and len(value) > max_length:
        raise param_error(f"{name} is limited to {max_length} characters, got {len(value)}")
    return value


def url(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    """An http(s) URL field."""
    value = string(body, name, required=required)
    if value is None:
        return None
    check_url(name, value)
    return value


def check_url(name: str, value: str) -> None:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise param_error(f"{name} must be an http(s) URL, got {value[:80]!r}")


def number(body: Mapping[str, Any], name: str, *, required: bool = True, minimum: float | None = None,
           maximum: float | None = None) -> float | None:
    value = _get(body, name, required)
    if value is _MISSING:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise param_error(f"{name} must be a number, got {value!r}")
    _check_range(name, value, minimum, maximum)
    return value


def integer(body: Mapping[str, Any], name: str, *, required: bool = True, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    """An integer field (JSON numbers with an integral value are accepted, strings are not)."""
    value = _get(body, name, required)
    if value is _MISSING:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        isinstance(value, float) and not value.is_integer()
    ):
        raise param_error(f"{name} must be an integer, got {value!r}")
    value = int(value)
    _check_range(name, value, minimum, maximum)
    return value


def _check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise param_error(f"{name} must be in [{minimum}, {maximum}], got {value}")
    if minimum is not None and value < minimum:
        raise param_error(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise param_error(f"{name} must be <= {maximum}, got {value}")


def boolean(body: Mapping[str, Any], name: str, *, required: bool = False) -> bool | None:
    value = _get(body, name, required)
    if value is _MISSING:
        return None
    if not isinstance(value, bool):
        raise param_error(f"{name} must be true or false, got {value!r}")
    return value


def one_of(body: Mapping[str, Any], name: str, allowed: Collection[Any], *, required: bool = True) -> Any:
    """A field whose value must be one of ``allowed`` (compared as given: "1" is not 1)."""
    value = _get(body, name, required)
    if value is _MISSING:
        return None
    if isinstance(value, bool) or value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise param_error(f"{name} must be one of {shown}; got {value!r}")
    return value


def size_string(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    """A ``"<width>x<height>"`` size such as ``"3840x3840"``."""
    value = string(body, name, required=required)
    if value is not None and not _SIZE_RE.match(value):
        raise param_error(f"{name} must look like '<width>x<height>' (e.g. '3840x3840'), got {value!r}")
    return value


def face_list(body: Mapping[str, Any], name: str, *, required: bool = True) -> list[dict[str, str]] | None:
    """``[{"path": url, "opts": landmarks_str}, ...]`` with 1-8 faces (more is code 1007)."""
    value = _get(body, name, required)
    if value is _MISSING:
        return None
    if not isinstance(value, list) or not value:
        raise param_error(f"{name} must be a non-empty array of {{path, opts}} objects")
    if len(value) > MAX_FACES:
        raise ApiError(1007, f"The number of people who can have their faces changed cannot exceed {MAX_FACES} "
                             f"({name} has {len(value)})")
    for i, face in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(face, dict):
            raise param_error(f"{where} must be an object with path and opts")
        path = face.get("path")
        if not isinstance(path, str) or not path:
            raise param_error(f"{where}.path is required (a link to the detected face)")
        check_url(f"{where}.path", path)
        opts = face.get("opts")
        if not isinstance(opts, str) or not _OPTS_RE.match(opts.strip()):
            raise param_error(
                f"{where}.opts must be the face's landmarks_str from /detect, like '262,175:363,175:313,215:272,279'; "
                f"got {opts!r}"
            )
    return value


def query_int(query: Mapping[str, str], name: str, *, default: int | None = None, minimum: int | None = None,
              maximum: int | None = None) -> int | None:
    """An integer query parameter."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise param_error(f"{name} must be an integer, got {raw!r}") from None
    _check_range(name, value, minimum, maximum)
    return value


def id_list(raw: Any, name: str) -> list[str]:
    """Ids as a comma-separated string (the docs' form) or a JSON array of strings; at least one."""
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        parts = raw
    elif isinstance(raw, str):
        parts = raw.split(",")
    elif raw is None:
        parts = []
    else:
        raise param_error(f"{name} must be a comma-separated string of ids")
    ids = [p.strip() for p in parts if p.strip()]
    if not ids:
        raise param_error(f"{name} is required (ids separated by commas)")
    return ids
