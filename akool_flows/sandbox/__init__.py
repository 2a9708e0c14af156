"""An Akool-compatible local server for tests, demos, notebooks and DAGs.

Every documented endpoint with the documented request and response shapes, a
clock-driven job lifecycle, deterministic failures (``sandbox-fail`` in any input
string) and moderation verdicts, an account balance, token / API-key auth, rate
limiting, fault injection, encrypted webhooks and result files with real bytes.

Paths and field names come from the client registry (``akool_flows.api.kinds``); what each
kind does is ``akool_flows.sandbox.kinds``. Request validation is written from the docs and
deliberately does not reuse the client's pydantic models, so the sandbox can catch the
client's mistakes instead of sharing them.

>>> from akool_flows.sandbox import Sandbox, SandboxConfig
>>> with Sandbox(SandboxConfig(job_seconds=0.5)) as sb:   # doctest: +SKIP
...     env = sb.env()                                      # AKOOL_BASE_URL, AKOOL_API_TOKEN...
"""

from __future__ import annotations

from akool_flows.sandbox.app import create_app
from akool_flows.sandbox.config import SandboxConfig
from akool_flows.sandbox.faults import FAULT_KINDS, FaultRule, Faults
from akool_flows.sandbox.kinds import BEHAVIOURS
from akool_flows.sandbox.kinds.pricing import moderation_price
from akool_flows.sandbox.moderation import classify
from akool_flows.sandbox.server import Sandbox
from akool_flows.sandbox.state import SandboxState

KIND_NAMES: tuple[str, ...] = tuple(BEHAVIOURS)
"""Job kind names the sandbox counts creates under (the client registry's names)."""

__all__ = [
    "FAULT_KINDS",
    "KIND_NAMES",
    "FaultRule",
    "Faults",
    "Sandbox",
    "SandboxConfig",
    "SandboxState",
    "classify",
    "create_app",
    "moderation_price",
]
