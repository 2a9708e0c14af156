"""Face swap from plain image URLs through every front-end over the engine (CLI, BatchApp,
run_batch): face detect fills the landmarks just before the create (`akool_flows.api.faces`)."""

from __future__ import annotations

import pandas as pd
import pytest

from akool_flows.api.faces import fill_faces_with, planned_body
from akool_flows.api.kinds import KINDS
from akool_flows.batch import plan_batch, run_batch
from akool_flows.cli import main
from akool_flows.sandbox.state import input_hash

from .conftest import make_client

SOURCE = "https://cdn.test/faces/new-face.jpg"
PHOTOS = ["https://cdn.test/photos/team.jpg", "https://cdn.test/photos/beach.jpg"]
SWAP = KINDS["faceswap_image"]


def _plain_urls() -> pd.DataFrame:
    return pd.DataFrame({"sourceImage": [SOURCE] * 2, "modifyImage": PHOTOS})


def _expected_hashes(sb) -> set[str]:
    """The input hash of each create the sandbox must have seen: faces with the landmarks its
    face detect gives for these URLs (so no placeholder and no guess reached Akool)."""
    client = make_client(sb, sync=True)
    try:
        bodies = [SWAP.build_body(fill_faces_with(client, SWAP, {"sourceImage": [SOURCE], "modifyImage": p}))
                  for p in PHOTOS]
    finally:
        client.close()
    for body in bodies:
        assert all(face["opts"] != "0,0:0,0:0,0:0,0" for face in body["sourceImage"] + body["targetImage"])
    return {input_hash("faceswap_image", b) for b in bodies}


def test_plan_accepts_plain_urls_and_keeps_no_made_up_landmarks():
    plan = plan_batch(_plain_urls(), "faceswap_image")
    assert plan.valid_count == 2, plan.errors
    body = plan.bodies[0]
    assert body["sourceImage"] == [{"path": SOURCE}] and "targetImage" not in body
    # Everything else is still checked before anything is spent.
    bad = plan_batch(pd.DataFrame({"sourceImage": [SOURCE], "modifyImage": ["not-a-url"]}), "faceswap_image")
    assert bad.valid_count == 0 and "modifyImage" in bad.errors[0]
    assert planned_body(KINDS["moderation"], KINDS["moderation"].example) == KINDS["moderation"].build_body(
        KINDS["moderation"].example)


def test_run_batch_detects_faces_then_creates_and_a_faceless_photo_fails_unpaid(sandbox, client, ledger_path):
    df = pd.concat([_plain_urls(), pd.DataFrame({"sourceImage": [SOURCE],
                                                 "modifyImage": ["https://cdn.test/sandbox-noface.jpg"]})],
                   ignore_index=True)
    res = run_batch(df, "faceswap_image", client=client, ledger=ledger_path, poll_interval=0.05).results
    assert res["outcome"].tolist() == ["completed", "completed", "failed"]
    assert "no face found in modifyImage" in res.loc[2, "error_message"]
    assert {j["input_hash"] for j in sandbox.jobs("faceswap_image")} == _expected_hashes(sandbox)
    assert sandbox.create_count("faceswap_image") == 2


def test_cli_batch_face_swaps_from_two_plain_image_urls(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _plain_urls().to_csv("swaps.csv", index=False)
    code = main(["batch", "faceswap_image", "swaps.csv", "--sandbox", "--sandbox-job-seconds", "0.2",
                 "--poll-interval", "0.05", "--out", "out.csv", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    res = pd.read_csv(tmp_path / "out.csv")
    assert res["outcome"].tolist() == ["completed", "completed"]
    assert res["result_url"].str.endswith(".png").all()


async def test_batch_app_face_swaps_from_two_plain_image_urls(sandbox, tmp_path):
    pytest.importorskip("ipywidgets")
    from akool_flows.notebook import BatchApp

    app = BatchApp(_plain_urls(), "faceswap_image", env=sandbox.env(), ledger=tmp_path / "l.sqlite",
                   poll_interval=0.05)
    assert app.plan is not None and app.plan.valid_count == 2, app._estimate_html.value
    app.run_button.click()
    await app.wait(timeout=30)
    assert app.results["outcome"].tolist() == ["completed", "completed"]
    assert {j["input_hash"] for j in sandbox.jobs("faceswap_image")} == _expected_hashes(sandbox)


def test_a_failed_face_detect_is_retried_never_uncertain(sandbox, client, ledger_path):
    """Face detect creates nothing: a 500 from it (after the client's own retries) is tried again,
    never read as a create that may have been paid."""
    sandbox.faults.http_500(next=4, path_prefix="/detect")  # the client's 4 attempts at the one detect
    face = {"path": "https://cdn.test/faces/old.jpg", "opts": "1,2:3,4:5,6:7,8"}
    df = pd.DataFrame({"sourceImage": [SOURCE], "targetImage": [[face]], "modifyImage": PHOTOS[:1]})
    res = run_batch(df, "faceswap_image", client=client, ledger=ledger_path, poll_interval=0.05).results
    assert res["outcome"].tolist() == ["completed"], res["error_message"].tolist()
    assert sandbox.create_count("faceswap_image") == 1
