"""Sub-commands of this area; filled in by the area's owner."""

from __future__ import annotations


def register(sub) -> None:  # noqa: ARG001
    return None
