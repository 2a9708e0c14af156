"""`akool-flows kinds`: the registry as a table, one kind in detail, JSON for scripts."""

from __future__ import annotations

import json

import pytest

from akool_flows.api import KINDS
from akool_flows.cli import main


def test_table_lists_every_kind_with_its_endpoints(capsys):
    assert main(["kinds"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "CREATE", "(POST)", "STATUS", "BATCH-POLL", "CANCEL", "(POST)",
                                "WEBHOOK", "REQUIRED"]
    for k in KINDS.values():
        [row] = [line for line in lines if line.startswith(k.name + " ")]
        assert k.create_path.removeprefix("/api/open") in row
        status = k.status_path.removeprefix('/api/open')
        assert (f'POST {status} {{"{k.status_id_param}"}}' if k.status_method == "POST"
                else f"{status}?{k.status_id_param}=") in row
        assert (" yes " in row) is k.batch_poll
        if k.cancel_path:
            assert k.cancel_path.removeprefix("/api/open") in row
        assert row.rstrip().endswith(", ".join(k.required_fields))
    assert f"{len(KINDS)} kinds" in out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_detail_shows_fields_constraints_and_a_valid_example(capsys, kind):
    assert main(["kinds", kind]) == 0
    out = capsys.readouterr().out
    k = KINDS[kind]
    assert out.startswith(f"{kind} - {k.title}")
    assert f"POST {k.create_path}" in out
    for name in k.required_fields:
        assert any(line.lstrip().startswith(f"* {name} ") for line in out.splitlines()), name
    example = json.loads(out[out.index("Example:") + len("Example:"):])
    k.validate(example)


def test_detail_names_the_documented_constraints(capsys):
    main(["kinds", "reage_image"])
    out = capsys.readouterr().out
    assert ">= -30, <= 30" in out and "targetImage[].opts" in out and "http(s) URL" in out
    main(["kinds", "image_button"])
    out = capsys.readouterr().out
    assert "one of 'U1', 'U2', 'U3', 'U4', 'V1', 'V2', 'V3', 'V4'" in out
    main(["kinds", "live_session"])
    assert "<= 3600" in capsys.readouterr().out


def test_json_output(capsys):
    assert main(["kinds", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == list(KINDS)
    assert main(["kinds", "moderation", "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["required"] == ["content", "type"] and one["example"] == dict(KINDS["moderation"].example)
    assert {f["name"] for f in one["fields"]} == set(KINDS["moderation"].field_names)


def test_unknown_kind_exits_2_listing_the_kinds(capsys):
    assert main(["kinds", "faceswap"]) == 2
    err = capsys.readouterr().err
    assert "unknown job kind 'faceswap'" in err and "faceswap_image" in err and "moderation" in err
