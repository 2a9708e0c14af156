"""Fault injection: infrastructure failures a real Akool deployment produces now and then.

A rule matches requests by path prefix and fires either for the *next N* matching
requests or with a *probability* drawn from a seeded generator, so a test run is
reproducible. Rules are checked in the order they were added; the first one that
fires decides the request's fate. Admin endpoints (``/_sandbox/...`` other than result
files) are never faulted, so a test can always clear what it set.

Fault kinds:

``http_500``
    answer HTTP 500 with an HTML error page (what a load balancer sends), without
    processing the request.
``delay``
    sleep ``seconds`` before processing the request normally.
``delay_after``
    process the request, then sleep ``seconds`` before answering (a create exists while
    its client still waits: kill the client then, and its answer is lost).
``drop``
    close the connection without answering, before processing (nothing happened).
``drop_after``
    process the request (a create call *creates the job and charges for it*), then
    close the connection without answering: the ambiguous window a client must not
    resolve by blindly submitting again.
``malformed_json``
    answer HTTP 200 with a truncated JSON body, without processing the request.
``rate_limit``
    answer ``{"code": 1005, "msg": "Operation is too frequent"}`` without processing.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "FaultRule", "Faults"]

FAULT_KINDS = ("http_500", "delay", "delay_after", "drop", "drop_after", "malformed_json", "rate_limit")


@dataclass
class FaultRule:
    """One injection rule. Exactly one of ``remaining`` (next N) and ``probability`` is set."""

    kind: str
    path_prefix: str = ""
    remaining: int | None = None
    probability: float | None = None
    seconds: float = 0.0
    """Delay of a ``delay`` rule."""
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}; got {self.kind!r}")
        if not isinstance(self.path_prefix, str) or (self.path_prefix and not self.path_prefix.startswith("/")):
            raise ValueError(f"path_prefix must be a path starting with '/', got {self.path_prefix!r}")
        if self.remaining is None and self.probability is None:
            self.remaining = 1
        if self.remaining is not None and self.probability is not None:
            raise ValueError("give either next (a count) or probability, not both")
        if self.remaining is not None and (
            isinstance(self.remaining, bool) or not isinstance(self.remaining, int) or self.remaining < 1
        ):
            raise ValueError(f"next must be an integer >= 1, got {self.remaining!r}")
        if self.probability is not None and (
            isinstance(self.probability, bool)
            or not isinstance(self.probability, (int, float))
            or not 0.0 <= self.probability <= 1.0
        ):
            raise ValueError(f"probability must be a number in [0, 1], got {self.probability!r}")
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)) or self.seconds < 0:
            raise ValueError(f"seconds must be a number >= 0, got {self.seconds!r}")
        if self.kind in ("delay", "delay_after") and self.seconds == 0:
            raise ValueError("a delay fault needs seconds > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The fault rules of one sandbox; thread-safe (tests drive it from outside the server loop).

    Examples::

        sb.faults.http_500(next=3, path_prefix="/api/open/v3/content/analysis/sentiment")
        sb.faults.slow(2.0, probability=0.1)
        sb.faults.drop_after_create(next=1, path_prefix="/api/open/v3/faceswap/highquality")
        sb.faults.clear()
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)
        self._seed = seed
        self.injected: dict[str, int] = {kind: 0 for kind in FAULT_KINDS}

    # -- adding rules -------------------------------------------------------------------
    def add(self, rule: FaultRule) -> FaultRule:
        """Append ``rule`` (checked after the rules already present)."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def add_from_dict(self, spec: dict[str, Any]) -> FaultRule:
        """Build a rule from the JSON accepted by ``POST /_sandbox/faults``.

        ``{"kind": "http_500", "next": 3, "path_prefix": "/api/open/v3/..."}`` or
        ``{"kind": "delay", "seconds": 1.5, "probability": 0.2}``.
        """
        allowed = {"kind", "next", "probability", "path_prefix", "seconds"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
        if "kind" not in spec:
            raise ValueError(f"fault field 'kind' is required; one of {', '.join(FAULT_KINDS)}")
        return self.add(
            FaultRule(
                kind=spec["kind"],
                path_prefix=spec.get("path_prefix", ""),
                remaining=spec.get("next"),
                probability=spec.get("probability"),
                seconds=spec.get("seconds", 0.0),
            )
        )

    def http_500(
        self, next: int | None = None, *, probability: float | None = None, path_prefix: str = ""
    ) -> FaultRule:
        """Answer HTTP 500 (HTML body) instead of processing matching requests."""
        return self.add(FaultRule("http_500", path_prefix, next, probability))

    def slow(
        self, seconds: float, next: int | None = None, *, probability: float | None = None, path_prefix: str = "",
        after_processing: bool = False,
    ) -> FaultRule:
        """Delay matching requests by ``seconds`` (then process them normally); with
        ``after_processing`` the request takes effect first and its answer is late (a create
        whose client may die before the answer arrives)."""
        kind = "delay_after" if after_processing else "delay"
        return self.add(FaultRule(kind, path_prefix, next, probability, seconds))

    def drop(
        self,
        next: int | None = None,
        *,
        probability: float | None = None,
        path_prefix: str = "",
        after_processing: bool = False,
    ) -> FaultRule:
        """Close the connection without answering; with ``after_processing`` the request takes effect first."""
        return self.add(FaultRule("drop_after" if after_processing else "drop", path_prefix, next, probability))

    def drop_after_create(
        self, next: int | None = None, *, probability: float | None = None, path_prefix: str = ""
    ) -> FaultRule:
        """Create the job (and charge for it), then close the connection without answering."""
        return self.drop(next, probability=probability, path_prefix=path_prefix, after_processing=True)

    def malformed_json(
        self, next: int | None = None, *, probability: float | None = None, path_prefix: str = ""
    ) -> FaultRule:
        """Answer HTTP 200 with a truncated JSON body instead of processing matching requests."""
        return self.add(FaultRule("malformed_json", path_prefix, next, probability))

    def rate_limit(
        self, next: int | None = None, *, probability: float | None = None, path_prefix: str = ""
    ) -> FaultRule:
        """Answer business code 1005 (too frequent) instead of processing matching requests."""
        return self.add(FaultRule("rate_limit", path_prefix, next, probability))

    # -- state ----------------------------------------------------------------------------
    def clear(self) -> None:
        """Remove every rule (counters of injected faults are kept until ``reset``)."""
        with self._lock:
            self._rules.clear()

    def reset(self) -> None:
        """Remove every rule, zero the counters and reseed the generator."""
        with self._lock:
            self._rules.clear()
            self._rng = random.Random(self._seed)
            self.injected = {kind: 0 for kind in FAULT_KINDS}

    def rules(self) -> list[dict[str, Any]]:
        """The active rules as dicts (exhausted next-N rules are removed)."""
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def pick(self, path: str) -> FaultRule | None:
        """The rule that fires for a request to ``path``, consuming one use of it, or ``None``."""
        if not self._rules:  # the hot path: no lock when nothing is configured
            return None
        with self._lock:
            for rule in self._rules:
                if not path.startswith(rule.path_prefix):
                    continue
                if rule.probability is not None:
                    if self._rng.random() >= rule.probability:
                        continue
                else:
                    assert rule.remaining is not None
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                rule.fired += 1
                self.injected[rule.kind] += 1
                return rule
        return None
