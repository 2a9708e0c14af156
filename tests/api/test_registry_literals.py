"""No layer branches on a kind's name: what differs per kind is a registry attribute.

A comparison like ``kind == "moderation"`` or ``kind.name in ("faceswap_image", ...)`` outside the
registry is a list kept by hand: the next kind with the same trait silently misses the branch.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from akool_flows.api.kinds import KINDS

ROOT = Path(__file__).resolve().parents[2]
#: Where kind names are data: the registry, its request models, the sandbox's per-kind behaviour.
ALLOWED = ("akool_flows/api/kinds.py", "akool_flows/api/models.py", "akool_flows/sandbox/kinds/")
_OPS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


def _kind_literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in KINDS:
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
        return [name for elt in node.elts for name in _kind_literals(elt)]
    return []


def kind_name_comparisons(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, kind name)`` of every comparison of a value with a kind-name literal."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare) and any(isinstance(op, _OPS) for op in node.ops):
            for operand in (node.left, *node.comparators):
                found += [(node.lineno, name) for name in _kind_literals(operand)]
    return found


def _files() -> list[Path]:
    files = sorted((ROOT / "akool_flows").rglob("*.py")) + sorted((ROOT / "dags").rglob("*.py"))
    return [f for f in files if not str(f.relative_to(ROOT)).startswith(ALLOWED)]


def test_no_kind_name_is_compared_outside_the_registry():
    offences = [f"{path.relative_to(ROOT)}:{line}: compares with {name!r}"
                for path in _files() for line, name in kind_name_comparisons(path.read_text(), str(path))]
    assert not offences, "use a registry attribute (JobKind.verdict_field, price, face_fields...):\n" + "\n".join(
        offences)


@pytest.mark.parametrize("code", [
    'if kind == "moderation": pass',
    'ok = "moderation" != s["kind"]',
    'ok = k.name in ("faceswap_image", "reage_image")',
    'ok = name not in {"tts", "voice_clone"}',
])
def test_the_check_sees_each_form_of_comparison(code):
    assert kind_name_comparisons(code)


@pytest.mark.parametrize("code", [
    'plan_batch(df, "moderation")',  # naming a kind to run is data, not a branch
    'ok = kind.verdict_field is not None',
    'ok = "lipsync_video_url" in fields',
])
def test_the_check_leaves_other_uses_alone(code):
    assert not kind_name_comparisons(code)
