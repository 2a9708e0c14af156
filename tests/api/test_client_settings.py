"""Clients built from another client share its account and settings, and never show secrets."""

from __future__ import annotations

from akool_flows.api import AkoolClient, AsyncAkoolClient, JobStatus


def test_from_client_keeps_account_and_settings():
    sync = AkoolClient(base_url="http://127.0.0.1:9", client_id="cid", client_secret="s" * 24,
                       headers={"X-Team": "ops"}, max_requests_per_second=5)
    twin = AsyncAkoolClient.from_client(sync, max_connections=8)
    assert twin.base_url == sync.base_url and twin.credentials.client_secret == "s" * 24
    assert twin.settings()["headers"] == {"X-Team": "ops"} and twin.max_requests_per_second == 5
    assert "s" * 24 not in repr(twin) and "s" * 24 not in repr(twin.credentials)
    back = AkoolClient.from_client(twin)
    assert back.credentials.mode == "client_credentials"
    sync.close()
    back.close()


def test_job_status_from_event():
    class Event:
        job_id, status, url, raw = "j1", 3, "https://x/r.mp4", {"_id": "j1", "status": 3, "type": "lipsync"}

    st = JobStatus.from_event("lipsync", Event())
    assert st.state == "completed" and st.result_urls == ("https://x/r.mp4",) and st.job_id == "j1"
    Event.status = 2
    assert JobStatus.from_event("lipsync", Event()) is None
    assert JobStatus.from_event("lipsync", None) is None
