"""Shared fixtures for the webhook tests."""

from __future__ import annotations

import pytest

# A 24-character secret like Akool issues, and a clientId longer than 16 bytes (the IV is
# its first 16 bytes). Neither is a real credential.
CLIENT_ID = "AKDt8rWEczpYPzCGur2xE="
CLIENT_SECRET = "nmwUjMAK0PJpl0MOiXLOOOwZ"
SHORT_CLIENT_ID = "ak-short"


@pytest.fixture
def store(tmp_path):
    from akool_flows.webhook import WebhookEventStore

    s = WebhookEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}", poll_interval=0.05)
    yield s
    s.close()
