"""One input row -> its request body, key and price: the per-row work of a plan.

This is the loop a million-row plan runs a million times, so it is written for that: values
are cleaned by their exact type first (a CSV cell is a ``str``; ``tolist()`` gives plain Python),
defaults are cleaned once, and the row key is spliced from the body's parts instead of encoding
a wrapper dict per row. Every shortcut gives the same answer as the plain way (the tests compare
the two); anything unusual takes the plain way.
"""

from __future__ import annotations

import hashlib
import json
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from json.encoder import encode_basestring  # the encoder's own string escaping (C when available)
from typing import Any, Literal, Union

import pandas as pd
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from akool_flows.api.errors import ValidationError
from akool_flows.api.faces import planned_body
from akool_flows.api.kinds import JobKind, get_kind
from akool_flows.api.unknown_fields import may_nest as _may_nest
from akool_flows.batch.cost import estimate_row
from akool_flows.batch.staging import STAGED_PLACEHOLDER, file_sources

__all__ = ["RowPlanner", "row_key_for", "is_missing", "python_value", "duration_of"]


# --- value cleaning ------------------------------------------------------------------------------

def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def python_value(value: Any) -> Any:
    """numpy / pandas scalars -> plain Python (pydantic and json know those)."""
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy":
        return item()
    return value


def duration_of(value: Any) -> float | None:
    value = python_value(value)
    if is_missing(value):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _base_types(annotation: Any) -> set[Any]:
    """The plain types an annotation accepts: int, str, list, a model class, ("literal", values)..."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_types(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        out: set[Any] = set()
        for arg in typing.get_args(annotation):
            out |= _base_types(arg)
        return out
    if origin is Literal:
        return {type(v) for v in typing.get_args(annotation)}
    if origin in (list, tuple, set):
        return {list}
    if origin in (dict, Mapping):
        return {dict}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {dict}
    return {annotation}


def _coercer(types_: set[Any]) -> Callable[[Any], Any] | None:
    """Turn what a CSV cell holds (always text) into what the field wants, when unambiguous.

    pydantic already reads "true" as a bool and "12" as an int for `int` fields, but not for
    `Literal[1, 2, 3, 4]` (moderation `type`), and never parses JSON for list fields. None: the
    field takes cells as they are.
    """
    wants_int = int in types_ and bool not in types_ and str not in types_
    wants_json = bool(types_ & {list, dict}) and str not in types_
    if not (wants_int or wants_json):
        return None

    def coerce(value: Any) -> Any:
        if wants_int:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                text = value.strip()
                try:
                    number = float(text)
                except ValueError:
                    return value
                if number.is_integer() and math.isfinite(number):
                    return int(number)
        if wants_json and isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                return json.loads(value)
            except ValueError:
                return value  # validation will say what the field expects
        return value

    return coerce


def _field_coercers(kind: JobKind) -> dict[str, Callable[[Any], Any]]:
    out = {}
    for name, info in kind.request_model.model_fields.items():
        coerce = _coercer(_base_types(info.annotation))
        if coerce is not None:
            out[info.alias or name] = coerce
    return out


# --- keys ------------------------------------------------------------------------------------------

# The one encoding of a request, kept byte for byte: keys already in users' ledgers depend on it.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_LITERALS = {True: "true", False: "false", None: "null"}


def _encoded(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is bool or value is None:
        return _LITERALS[value]
    if kind is int:
        return int.__repr__(value)
    return _ENCODER.encode(value)


def _key_of(kind_name: str, body: Mapping[str, Any]) -> str:
    # json.dumps({"kind": k, "body": body}, sort_keys=True, ...) spliced from its parts: JSON is
    # compositional, so encoding each value alone and joining gives the same text.
    try:
        items = sorted(body.items())
    except TypeError:  # keys of mixed types: let the encoder say what it does with them
        text = _ENCODER.encode({"kind": kind_name, "body": body})
    else:
        inner = ",".join([f"{encode_basestring(name)}:"
                          f"{encode_basestring(value) if type(value) is str else _encoded(value)}"
                          for name, value in items])
        text = f'{{"body":{{{inner}}},"kind":{encode_basestring(kind_name)}}}'
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def row_key_for(kind: str | JobKind, body: Mapping[str, Any]) -> str:
    """Stable key of one request: the same kind and fields give the same key, in any process."""
    return _key_of(get_kind(kind).name, body)


# --- one row ---------------------------------------------------------------------------------------

class RowPlanner:
    """Everything that is the same for every row of a plan, and the work done per row."""

    def __init__(self, kind: JobKind, defaults: Mapping[str, Any], *, max_cell_chars: int, staging: bool,
                 strict_fields: bool, cost_table: Mapping[str, float], observed: float | None) -> None:
        self.kind = kind
        self.max_cell_chars = max_cell_chars
        self.staging = staging
        self.strict_fields = strict_fields
        self.coercers = _field_coercers(kind)
        self._url_fields = frozenset(kind.url_fields)
        # The common case (no faces to detect, no unknown or nested fields) validates and dumps
        # through pydantic's own validator and serializer; anything else, or any problem, takes
        # `planned_body`, which also words the error.
        model = kind.request_model
        self._direct = not kind.face_fields and not _may_nest(model)
        self._validate = model.__pydantic_validator__.validate_python
        self._dump = model.__pydantic_serializer__.to_python
        self.cost_table = cost_table
        self.observed = observed
        self.defaults = dict(defaults)
        # Defaults are cleaned once; a default that would reject a row is cleaned per row (the row
        # may override it, and the message must name it only when it is used).
        clean: dict[str, Any] | None = {}
        for name, value in self.defaults.items():
            value, problem = self._clean(name, python_value(value))
            if problem is not None:
                clean = None
                break
            if value is not _SKIP:
                clean[name] = value
        self._clean_defaults = clean

    def _clean(self, name: str, value: Any) -> tuple[Any, str | None]:
        """The value to send for one cell, `_SKIP` for an empty one, or why the row is rejected."""
        if type(value) is str:
            if not value.strip():
                return _SKIP, None
            if len(value) > self.max_cell_chars:
                return _TOO_LONG, (f"{self.kind.name}: {name}: {len(value):,} characters, over the limit of "
                                   f"{self.max_cell_chars:,} (max_cell_chars)")
            if "\x00" in value:
                return None, f"{self.kind.name}: {name}: contains a NUL character (binary data in a text cell?)"
        elif is_missing(value):
            return _SKIP, None
        elif isinstance(value, str):  # a str subclass: the same checks, the plain way
            return self._clean(name, str(value))
        coerce = self.coercers.get(name)
        return (value if coerce is None else coerce(value)), None

    def fields_of(self, mapped: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The request body of one row (validated and dumped) or the raw fields plus why they fail."""
        if self._clean_defaults is not None:
            fields = dict(self._clean_defaults)
            items = mapped.items()
        else:
            fields = {}
            items = {**self.defaults, **{n: v for n, v in mapped.items() if not is_missing(v)}}.items()
        for name, value in items:
            if type(value) is not str:
                value = python_value(value)
            value, problem = self._clean(name, value)
            if problem is not None:
                if value is _TOO_LONG:  # the rejected row is shown without the runaway text
                    return {n: (f"<{len(v):,} characters>" if isinstance(v, str) and len(v) > 200 else v)
                            for n, v in fields.items()}, problem
                return fields, problem
            if value is not _SKIP:
                fields[name] = value
        sources: dict[str, str] = {}
        if self._url_fields and not self._url_fields.isdisjoint(fields):
            sources, problem = file_sources(self.kind, fields, staging=self.staging)
            if problem is not None:
                return _jsonable(fields), problem
        try:
            # A file to stage validates as the URL it will become, and stays a path in the plan.
            if self._direct and not sources:
                body = self._direct_body(fields)
                if body is not None:
                    return body, None
            staged = {**fields, **dict.fromkeys(sources, STAGED_PLACEHOLDER)} if sources else fields
            body = planned_body(self.kind, staged, strict=self.strict_fields)
            return ({**body, **sources} if sources else body), None
        except ValidationError as exc:
            return _jsonable(fields), exc.message

    def _direct_body(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        try:
            model = self._validate(fields)
        except PydanticValidationError:
            return None
        if model.__pydantic_extra__:
            return None
        return self._dump(model, by_alias=True, exclude_none=True, mode="json")

    def plan(self, mapped: Mapping[str, Any] | None, failure: str | None,
             duration: Any = None) -> tuple[str, dict[str, Any], str | None, float | None, str | None]:
        """``(key, body, error, credits, cost source)`` of one row; ``failure`` is why the row
        could not even be mapped (a row function that failed)."""
        if failure is not None:
            body: dict[str, Any] = {}
            error: str | None = failure
        else:
            body, error = self.fields_of(mapped or {})
        key = _key_of(self.kind.name, body)
        if error is not None:
            return key, body, error, None, None
        credits, source = estimate_row(self.kind, body, duration_seconds=None if duration is None
                                       else duration_of(duration), cost_table=self.cost_table, observed=self.observed)
        return key, body, None, credits, source


_SKIP = object()
_TOO_LONG = object()


def mapped_rows(df: pd.DataFrame, to_fields: Callable[[dict[str, Any]], Mapping[str, Any]] | Mapping[str, str],
                durations: str | None) -> Iterator[tuple[Mapping[str, Any] | None, str | None, Any]]:
    """``(fields, failure, duration cell)`` per row of ``df``: a ``{field: column}`` mapping reads
    whole columns at once; a row function gets each row as a dict (its failures are per row)."""
    spans = df[durations].tolist() if durations else None
    if isinstance(to_fields, Mapping):
        names = list(to_fields)
        columns = [df[col].tolist() for col in to_fields.values()]
        for i, values in enumerate(zip(*columns) if columns else ([()] * len(df))):
            yield dict(zip(names, values)), None, spans[i] if spans is not None else None
        return
    for i, row in enumerate(df.to_dict("records")):
        duration = spans[i] if spans is not None else None
        try:
            mapped = to_fields(row)
        except Exception as exc:  # a user's row function: report per row, do not stop the plan
            yield None, f"the row function failed: {type(exc).__name__}: {exc}", duration
            continue
        if not isinstance(mapped, Mapping):
            yield None, f"the row function returned {type(mapped).__name__}, expected a dict of fields", duration
            continue
        yield mapped, None, duration


def _jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(fields)
        return fields
    except (TypeError, ValueError):
        return {n: (v if isinstance(v, (str, int, float, bool, list, dict)) or v is None else str(v))
                for n, v in fields.items()}
