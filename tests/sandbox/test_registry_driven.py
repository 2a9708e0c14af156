"""The sandbox serves every kind of the client registry, under the registry's names, over HTTP.

Nothing here is listed by hand: kinds, paths, id parameters, status / result / credit
fields, cancel fields and request bodies (the registry's ``example``) all come from
``akool_flows.api.kinds.KINDS``. A kind added to the registry is tested here unchanged.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from akool_flows.api.kinds import KINDS, JobKind
from akool_flows.sandbox import Sandbox, SandboxConfig, create_app

from .conftest import FAST, ok_data, wait_for

# An example value that is another job's _id (a MongoDB ObjectId).
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
# A session's lifetime is its `duration`: scale the registry example's to the FAST clock.
_SESSION_SCALE = FAST["job_seconds"] / 600


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(**FAST, session_time_scale=_SESSION_SCALE)) as sb:
        yield sb


def _record(kind: JobKind, data: Any) -> dict[str, Any]:
    """The job's record in a create or status answer, read the way the registry says."""
    if kind.batch_poll and isinstance(data, dict) and "result" in data:
        records = data["result"]
        assert len(records) == 1, data
        return records[0]
    return data[0] if isinstance(data, list) else data


def _status_answer(client: httpx.Client, kind: JobKind, ids: str) -> httpx.Response:
    """The status endpoint asked the registry's way: the id in the query (GET) or a JSON body (POST)."""
    if kind.status_method == "POST":
        return client.post(kind.status_path, json={kind.status_id_param: ids})
    return client.get(kind.status_path, params={kind.status_id_param: ids})


def _status(client: httpx.Client, kind: JobKind, job_id: str) -> dict[str, Any]:
    data = ok_data(_status_answer(client, kind, job_id))
    if kind.status_data_is_list:
        assert isinstance(data, list), data
    return _record(kind, data)


def _status_code(kind: JobKind, record: dict[str, Any]) -> int:
    return next(record[f] for f in kind.status_fields if f in record)


def _references(kind: JobKind) -> list[str]:
    return [name for name, value in kind.example.items() if isinstance(value, str) and _OBJECT_ID.match(value)]


def _create(client: httpx.Client, kind: JobKind) -> dict[str, Any]:
    """Create a job from the registry's example. A field naming another job (image_button's
    ``_id``) gets a finished job of a kind the same status endpoint reports, trying each such
    kind until the sandbox accepts the pair."""
    body = dict(kind.example)
    refs = _references(kind)
    if not refs:
        return _record(kind, ok_data(client.post(kind.create_path, json=body)))
    siblings = [k for k in KINDS.values() if k.status_path == kind.status_path and not _references(k)]
    assert siblings, f"{kind.name}: no kind to make the job its example refers to"
    for sibling in siblings:
        origin = _create(client, sibling)
        wait_for(lambda: _status_code(sibling, _status(client, sibling, origin["_id"])) == 3)
        answer = client.post(kind.create_path, json={**body, **dict.fromkeys(refs, origin["_id"])}).json()
        if answer["code"] == 1000:
            return _record(kind, answer["data"])
    raise AssertionError(f"{kind.name}: the sandbox accepted no sibling job for {refs}")


def test_the_app_routes_every_registry_path() -> None:
    routes = {(r.method, r.resource.canonical) for r in create_app(SandboxConfig()).router.routes()}
    for kind in KINDS.values():
        assert ("POST", kind.create_path) in routes, kind.name
        assert (kind.status_method, kind.status_path) in routes, kind.name
        if kind.cancel_path:
            assert ("POST", kind.cancel_path) in routes, kind.name


def test_a_registry_kind_without_a_behaviour_fails_the_sandbox_import() -> None:
    code = ("import dataclasses, akool_flows.api.kinds as k; "
            "k.KINDS['brand_new'] = dataclasses.replace(k.KINDS['tts'], name='brand_new'); "
            "import akool_flows.sandbox")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "'brand_new'" in proc.stderr and "no behaviour" in proc.stderr


@pytest.mark.parametrize("name", list(KINDS))
def test_create_and_status_use_the_registry_names(sandbox: Sandbox, name: str) -> None:
    kind = KINDS[name]
    with httpx.Client(base_url=sandbox.base_url, headers={"x-api-key": sandbox.api_key}, timeout=10) as client:
        created = _create(client, kind)
        job_id = created["_id"]
        if kind.cancel_id_field and kind.cancel_id_field != "_id":
            assert created[kind.cancel_id_field], created  # the id the cancel endpoint takes

        first = _status(client, kind, job_id)
        assert first["_id"] == job_id and _status_code(kind, first) in (1, 2, 3)
        wait_for(lambda: _status_code(kind, _status(client, kind, job_id)) == 3)
        done = _status(client, kind, job_id)
        if kind.result_fields:
            assert any(done.get(f) for f in kind.result_fields), (kind.result_fields, done)
        if kind.credit_fields:
            assert any(isinstance(done.get(f), (int, float)) for f in kind.credit_fields), done
        if kind.duration_fields:
            assert any(isinstance(done.get(f), (int, float)) for f in kind.duration_fields), done
        assert sandbox.create_count(name) >= 1


@pytest.mark.parametrize("name", [n for n, k in KINDS.items() if k.batch_poll])
def test_batch_status_answers_many_ids_in_one_call(sandbox: Sandbox, name: str) -> None:
    kind = KINDS[name]
    with httpx.Client(base_url=sandbox.base_url, headers={"x-api-key": sandbox.api_key}, timeout=10) as client:
        ids = [_create(client, kind)["_id"] for _ in range(3)]
        data = ok_data(_status_answer(client, kind, ",".join([*ids, "0" * 24])))
        assert [r["_id"] for r in data["result"]] == ids  # an unknown id is simply absent
        assert all(_status_code(kind, r) in (1, 2, 3) for r in data["result"])


@pytest.mark.parametrize("name", [n for n, k in KINDS.items() if k.cancel_path])
def test_cancel_ends_the_job_with_the_registry_fields(sandbox: Sandbox, name: str) -> None:
    kind = KINDS[name]
    sandbox.configure(queue_seconds=5, job_seconds=10, session_time_scale=1.0)  # still running when cancelled
    with httpx.Client(base_url=sandbox.base_url, headers={"x-api-key": sandbox.api_key}, timeout=10) as client:
        created = _create(client, kind)
        assert kind.cancel_body_field and kind.cancel_id_field
        ok_data(client.post(kind.cancel_path, json={kind.cancel_body_field: created[kind.cancel_id_field]}))
        ended = _status_code(kind, _status(client, kind, created["_id"]))
        assert ended in (3, 4)
        time.sleep(0.05)
        assert _status_code(kind, _status(client, kind, created["_id"])) == ended  # and it stays ended
