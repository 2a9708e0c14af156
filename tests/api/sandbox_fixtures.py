"""Fixtures for client tests against one sandbox per module, in both client modes; import them
into a test module (``from .sandbox_fixtures import drv, sandbox, sb``)."""

from __future__ import annotations

import pytest

from akool_flows.api import AkoolClient, AsyncAkoolClient, unknown_fields

from .helpers import Driver

MODES = ("sync", "async")


@pytest.fixture(scope="module")
def sb():
    from akool_flows.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(queue_seconds=0.02, job_seconds=0.08, seed=0)) as box:
        yield box


@pytest.fixture
def sandbox(sb, monkeypatch):
    """The module's sandbox, reset; unknown-field warnings as in a fresh process (they are once per process)."""
    sb.reset()
    monkeypatch.setattr(unknown_fields, "_warned", set())
    yield sb


def sandbox_client(mode: str, sb, **kwargs) -> Driver:
    cls = AkoolClient if mode == "sync" else AsyncAkoolClient
    return Driver(mode, cls.from_env(sb.env(), **kwargs))


@pytest.fixture(params=MODES)
async def drv(request, sandbox):
    d = sandbox_client(request.param, sandbox)
    yield d
    await d.close()
