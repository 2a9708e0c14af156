"""Create fields the docs do not list: find them in a validated request, warn once per kind
and field per process (`UnknownFieldWarning`).

They are sent as given (Akool's own code sends many: ``speaker_num``, ``voices_map``,
``knowledge_id``...); `JobKind.validate(strict=True)` refuses them instead.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from collections.abc import Iterator

from pydantic import BaseModel

__all__ = ["UnknownFieldWarning", "may_nest", "unknown_fields", "warn_unknown"]


class UnknownFieldWarning(UserWarning):
    """A create field the docs do not list was sent as given (``strict=True`` refuses it)."""


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_unknown(kind: str, path: str) -> None:
    # Once per process: a batch validates every row, and the field's name is all there is to say.
    with _warned_lock:
        if (kind, path) in _warned:
            return
        _warned.add((kind, path))
    warnings.warn(f"{kind}: {path!r} is not a field the docs list; it is sent to Akool as given "
                  "(strict=True or --strict-fields refuse it)", UnknownFieldWarning, stacklevel=_callers_level())


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _callers_level() -> int:
    """The `stacklevel` of the first frame outside akool_flows: the warning names the user's line."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


@functools.cache
def may_nest(model: type[BaseModel]) -> bool:
    """Whether any field of the model can hold another model (whose own extras must be found)."""
    from akool_flows.api.kinds import nested_model

    return any(nested_model(info.annotation) is not None for info in model.model_fields.values())


def unknown_fields(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    """``(path, allowed names there)`` for every field of a validated request that its model does
    not declare, nested ones too (``elements[].layer_number``)."""
    if not model.model_extra and not may_nest(type(model)):
        return  # the common case, checked once per row of a million-row plan
    allowed = [f.alias or n for n, f in type(model).model_fields.items()]
    for name in model.model_extra or {}:
        yield f"{prefix}{name}", allowed
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        items = value if isinstance(value, list) else [value]
        here = f"{prefix}{info.alias or name}{'[]' if isinstance(value, list) else ''}."
        seen: set[str] = set()
        for item in items:
            if isinstance(item, BaseModel):
                for path, names in unknown_fields(item, here):
                    if path not in seen:  # one report per field, not per list item
                        seen.add(path)
                        yield path, names
