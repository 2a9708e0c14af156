"""The Python API contract, counters, admin HTTP endpoints, in-loop use and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from akool_flows.sandbox import KIND_NAMES, Sandbox, SandboxConfig, create_app

from .conftest import EXAMPLES, V3, ok_data, status_of

CLI = [sys.executable, "-c", "import sys; from akool_flows.cli import main; sys.exit(main(sys.argv[1:]))"]


def test_contract_surface() -> None:
    cfg = SandboxConfig(queue_seconds=0.1, job_seconds=0.5, latency=0.0, credits=1_000_000.0,
                        rate_limit_per_second=None, seed=0)
    with Sandbox(cfg) as sb:
        assert sb.base_url.startswith("http://127.0.0.1:") and sb.port > 0
        assert sb.detect_url == sb.base_url + "/detect"
        assert len(sb.client_secret) == 24 and sb.client_id and sb.token and sb.api_key
        assert sb.env() == {"AKOOL_BASE_URL": sb.base_url, "AKOOL_DETECT_URL": sb.detect_url,
                            "AKOOL_API_TOKEN": sb.token}
        assert sb.env("api_key")["AKOOL_API_KEY"] == sb.api_key
        assert sb.env("client")["AKOOL_CLIENT_SECRET"] == sb.client_secret
        with pytest.raises(ValueError, match="auth must be"):
            sb.env("password")
        assert sb.create_count() == 0 and sb.duplicate_creates() == {} and sb.stats()["requests"] == 0
    assert not sb.running


def test_secrets_stay_out_of_reprs() -> None:
    with Sandbox() as sb:
        for text in (repr(sb), repr(sb.config), str(sb.config.public_dict()), str(sb.stats())):
            for secret in (sb.client_secret, sb.token, sb.api_key):
                assert secret not in text
        assert sb.client_secret not in httpx.get(f"{sb.base_url}/_sandbox/config").text


def test_counters_prove_what_was_submitted(sandbox: Sandbox, client: httpx.Client) -> None:
    path, body = EXAMPLES["moderation"]
    ok_data(client.post(path, json=body))
    ok_data(client.post(path, json={**body, "webhookUrl": "http://127.0.0.1:9/x"}))  # same input, other hook
    ok_data(client.post(path, json={**body, "content": "another text"}))
    tts = ok_data(client.post(*EXAMPLES["tts"][:1], json=EXAMPLES["tts"][1]))
    for _ in range(3):
        status_of(client, "tts", tts["_id"])
    assert sandbox.create_count() == 4
    assert sandbox.create_count("moderation") == 3 and sandbox.create_count("tts") == 1
    assert sandbox.create_count("lipsync") == 0
    with pytest.raises(ValueError, match="unknown kind"):
        sandbox.create_count("nope")
    dupes = sandbox.duplicate_creates()
    assert list(dupes.values()) == [2]
    [job] = [j for j in sandbox.jobs("moderation") if j["input_hash"] in dupes][:1]
    assert job["kind"] == "moderation"
    stats = sandbox.stats()
    assert stats["creates_by_kind"] == {"moderation": 3, "tts": 1}
    assert stats["polls_by_path"] == {f"{V3}/audio/infobymodelid": 3}
    assert stats["requests"] == 7 and stats["requests_by_path"][path] == 3
    assert stats["duplicate_creates"] == dupes
    assert sandbox.job_payload(tts["_id"])["_id"] == tts["_id"]


def test_reset_forgets_jobs_counters_faults_and_restores_credits(sandbox: Sandbox, client: httpx.Client) -> None:
    ok_data(client.post(*EXAMPLES["faceswap_image"][:1], json=EXAMPLES["faceswap_image"][1]))
    sandbox.faults.http_500(next=5, path_prefix="/api/open/v4")
    sandbox.set_credits(3)
    sandbox.reset()
    assert sandbox.create_count() == 0 and sandbox.jobs() == [] and sandbox.faults.rules() == []
    assert sandbox.credits == sandbox.config.credits
    assert client.get(f"{V3}/faceswap/quota/info").json()["code"] == 1000  # the token still works


def test_admin_http_api(sandbox: Sandbox, client: httpx.Client) -> None:
    base = f"{sandbox.base_url}/_sandbox"
    assert httpx.get(f"{base}/health").json() == {"ok": True}
    ok_data(client.post(*EXAMPLES["tts"][:1], json=EXAMPLES["tts"][1]))
    stats = httpx.get(f"{base}/stats").json()
    assert stats["creates_by_kind"] == {"tts": 1}
    jobs = httpx.get(f"{base}/jobs", params={"kind": "tts"}).json()
    assert jobs["count"] == 1 and jobs["jobs"][0]["kind"] == "tts"
    config = httpx.post(f"{base}/config", json={"job_seconds": 2.0, "latency": 0.01}).json()
    assert config["job_seconds"] == 2.0 and sandbox.config.latency == 0.01
    bad = httpx.post(f"{base}/config", json={"job_seconds": -1})
    assert bad.status_code == 400 and "job_seconds" in bad.json()["error"]
    fixed = httpx.post(f"{base}/config", json={"port": 1})
    assert fixed.status_code == 400 and "port" in fixed.json()["error"]
    assert httpx.post(f"{base}/credits", json={"credits": 7}).json() == {"credits": 7.0}
    assert httpx.post(f"{base}/credits", json={"credits": "lots"}).status_code == 400
    assert httpx.post(f"{base}/config", json={"credits": 50}).json()["credits_balance"] == 50
    assert httpx.get(f"{base}/webhooks").json() == {"deliveries": []}
    assert httpx.post(f"{base}/reset").json() == {"ok": True}
    assert httpx.get(f"{base}/stats").json()["creates"] == 0


def test_latency_is_added_to_api_requests_only(sandbox: Sandbox, client: httpx.Client) -> None:
    # A latency well above what a loaded machine (2 shared cores) adds to an admin request.
    sandbox.configure(latency=0.5)
    start = time.monotonic()
    client.get(f"{V3}/faceswap/quota/info")
    assert time.monotonic() - start >= 0.5
    start = time.monotonic()
    httpx.get(f"{sandbox.base_url}/_sandbox/stats")
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize(("changes", "message"), [
    ({"job_seconds": 0.1, "queue_seconds": 0.2}, "job_seconds must be >= queue_seconds"),
    ({"latency": -1}, "latency"),
    ({"credits": "many"}, "credits must be a number"),
    ({"rate_limit_per_second": 0}, "rate_limit_per_second"),
    ({"client_secret": "short"}, "client_secret must be 16, 24 or 32 bytes"),
    ({"client_secret": "x" * 33}, "got 33 bytes"),
    ({"port": 70000}, "port"),
    ({"colour": "blue"}, "unknown SandboxConfig field"),
])
def test_config_validation_names_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxConfig().replace(**changes)


def test_overrides_as_keywords_and_double_start() -> None:
    sb = Sandbox(job_seconds=0.3)
    assert sb.config.job_seconds == 0.3
    with pytest.raises(RuntimeError, match="not running"):
        _ = sb.base_url
    sb.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            sb.start()
    finally:
        sb.stop()
    sb.stop()  # idempotent


def test_fixed_port_in_use_is_a_clear_error() -> None:
    with Sandbox() as first:
        with pytest.raises(RuntimeError, match="could not start"):
            Sandbox(port=first.port).start()


async def test_in_loop_astart() -> None:
    async with Sandbox(SandboxConfig(queue_seconds=0.0, job_seconds=0.0)) as sb:
        async with httpx.AsyncClient(base_url=sb.base_url, headers={"x-api-key": sb.api_key}) as client:
            created = (await client.post(*EXAMPLES["tts"][:1], json=EXAMPLES["tts"][1])).json()["data"]
            info = await client.get(f"{V3}/audio/infobymodelid", params={"audio_model_id": created["_id"]})
            assert info.json()["data"]["status"] == 3
            sb.reset()  # callable from the server's own loop
            assert sb.create_count() == 0


async def test_app_factory_with_aiohttp_test_client() -> None:
    config = SandboxConfig()
    async with TestClient(TestServer(create_app(config))) as client:
        answer = await client.get(f"{V3}/voice/list", headers={"Authorization": f"Bearer {config.token}"})
        assert (await answer.json())["code"] == 1000


def test_kind_names_match_the_client_registry() -> None:
    from akool_flows.api.kinds import KINDS as REGISTRY
    from akool_flows.sandbox.kinds import BEHAVIOURS

    assert KIND_NAMES == tuple(REGISTRY)
    for name, kind in REGISTRY.items():
        assert BEHAVIOURS[name].kind is kind, name


def test_cli_prints_how_to_connect_and_stops_on_ctrl_c(tmp_path) -> None:
    env_file = tmp_path / "sandbox.env"
    proc = subprocess.Popen(
        [*CLI, "sandbox", "--port", "0", "--job-seconds", "0.1",
         "--write-env", str(env_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "AKOOL_SANDBOX_CLIENT_ID": "64db241f6d9e5c4bd136c187"},
    )
    try:
        lines = []
        assert proc.stdout is not None
        while not any("Ctrl-C" in line for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            lines.append(line)
        text = "".join(lines)
        base_url = next(line.split("=", 1)[1].strip() for line in lines if "AKOOL_BASE_URL=" in line)
        token = next(line.split("=", 1)[1].strip() for line in lines if "AKOOL_API_TOKEN=" in line)
        assert "AKOOL_CLIENT_ID=64db241f6d9e5c4bd136c187" in text
        voices = httpx.get(f"{base_url}{V3}/voice/list", headers={"Authorization": f"Bearer {token}"})
        assert voices.json()["code"] == 1000
        assert oct(env_file.stat().st_mode & 0o777) == "0o600" and token in env_file.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_cli_rejects_bad_settings() -> None:
    proc = subprocess.run([*CLI, "sandbox", "--latency", "-1"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "latency" in proc.stderr
