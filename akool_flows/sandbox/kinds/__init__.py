"""The sandbox's behaviour for every kind of the client registry (``akool_flows.api.kinds``).

The registry owns the *names*: create, status and cancel paths, id / status / result
fields, webhook types. This package owns what the sandbox *does* per status group
(audio, image, faceswap, analysis, video, avatar, session, image to video): how a create is validated and
priced, what the status payload holds, how a job ends early. Importing it fails when the
registry has a kind without a behaviour, or a behaviour names a kind the registry lacks,
so the two cannot drift apart.

Request validation is deliberately written from the docs and not from the client's
pydantic models: a sandbox that reused the client's models could not catch the client's
mistakes.
"""

from __future__ import annotations

from collections import defaultdict

from akool_flows.api.kinds import KINDS as REGISTRY
from akool_flows.sandbox.kinds import analysis, audio, avatar, faceswap, image, image2video, session, video
from akool_flows.sandbox.kinds.base import Behaviour, Plan, Prepare, Recipe

__all__ = ["BEHAVIOURS", "Behaviour", "Plan", "Prepare", "by_path", "check_kind_name"]


def _recipes() -> dict[str, Recipe]:
    recipes: dict[str, Recipe] = {}
    for module in (audio, image, faceswap, analysis, video, avatar, session, image2video):
        for name, recipe in module.RECIPES.items():
            if name in recipes:
                raise ImportError(f"sandbox: kind {name!r} has two behaviours ({module.__name__} and another)")
            recipes[name] = recipe
    return recipes


def _build() -> dict[str, Behaviour]:
    recipes = _recipes()
    missing = sorted(set(REGISTRY) - set(recipes))
    if missing:
        raise ImportError(f"sandbox: registry kind(s) {missing} have no behaviour in akool_flows.sandbox.kinds")
    unknown = sorted(set(recipes) - set(REGISTRY))
    if unknown:
        raise ImportError(f"sandbox: behaviour(s) for {unknown}, which akool_flows.api.kinds does not define")
    behaviours = {name: recipes[name].bind(kind) for name, kind in REGISTRY.items()}
    for b in behaviours.values():
        cancels = type(b).cancel is not Behaviour.cancel
        if bool(b.kind.cancel_path) != cancels or (cancels and not b.kind.cancel_body_field):
            raise ImportError(f"sandbox: {b.name}: the registry's cancel endpoint and the behaviour's cancel "
                              f"must come together (cancel_path={b.kind.cancel_path!r})")
    # Kinds that share an endpoint must render it alike, or the endpoint answers two shapes.
    for endpoint in ("status_path", "cancel_path"):
        for path, group in by_path(endpoint, behaviours).items():
            if len({type(b) for b in group}) > 1:
                raise ImportError(f"sandbox: {path} serves kinds with different behaviours: "
                                  f"{[b.name for b in group]}")
    return behaviours


def by_path(endpoint: str, behaviours: dict[str, Behaviour] | None = None) -> dict[str, list[Behaviour]]:
    """Behaviours grouped by one path of their registry kind (``"status_path"``, ``"cancel_path"``),
    skipping kinds that have no such endpoint."""
    groups: dict[str, list[Behaviour]] = defaultdict(list)
    for b in (BEHAVIOURS if behaviours is None else behaviours).values():
        path = getattr(b.kind, endpoint)
        if path:
            groups[path].append(b)
    return dict(groups)


def check_kind_name(kind: str | None) -> None:
    """``ValueError`` listing the kinds unless ``kind`` is None or a registry kind name."""
    if kind is not None and kind not in BEHAVIOURS:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(BEHAVIOURS)}")


BEHAVIOURS: dict[str, Behaviour] = _build()
"""Registry kind name -> its sandbox behaviour, in registry order."""
