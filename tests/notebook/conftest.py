"""Fixtures for the notebook apps: a fast sandbox, the sample data, a clean environment."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from akool_flows.sandbox import Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


@pytest.fixture(autouse=True)
def _no_akool_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The apps read AKOOL_* variables; a developer's real credentials must never reach a test.
    for name in list(os.environ):
        if name.startswith("AKOOL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(queue_seconds=0.05, job_seconds=0.3)) as sb:
        yield sb


@pytest.fixture
def comments() -> pd.DataFrame:
    return pd.read_csv(NOTEBOOKS / "data" / "comments.csv")


@pytest.fixture
def catalog() -> pd.DataFrame:
    return pd.read_csv(NOTEBOOKS / "data" / "catalog.csv")


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` on the running loop (the app's task keeps running meanwhile)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
