"""Face swap / re-age with plain URLs: fill each face's ``opts`` through face detect.

Akool wants every face as ``{"path": <image url>, "opts": <landmarks>}``, the landmarks coming
from its face detect endpoint. The operators accept, in ``sourceImage`` / ``targetImage``,
plain image URLs or ``{"path": ...}`` without ``opts``; for image kinds a missing
``targetImage`` is derived from ``modifyImage`` (the faces found in the picture being edited).

Validation runs first with placeholder landmarks, so every other mistake is reported before
any face detect call; detection fills the placeholders; the caller validates again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from akool_flows.api.errors import ValidationError
from akool_flows.api.kinds import JobKind

__all__ = ["FACE_LIST_FIELDS", "fill_faces", "prevalidate", "needs_detection"]

#: Request fields that hold lists of faces.
FACE_LIST_FIELDS = ("sourceImage", "targetImage")
_PLACEHOLDER = "0,0:0,0:0,0:0,0"
_MISSING = object()

#: detect(url, single_face) -> list of landmark strings, one per face found.
Detector = Callable[[str, bool], list[str]]


def _face_fields(kind: JobKind) -> list[str]:
    return [f for f in FACE_LIST_FIELDS if f in kind.request_model.model_fields]


def _normalise(kind: JobKind, fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, int, str]]]:
    """Faces as dicts; the (field, index, url) of every face whose ``opts`` must be detected.
    A missing ``targetImage`` of an image kind becomes one entry marked with index -1."""
    out = dict(fields)
    todo: list[tuple[str, int, str]] = []
    for name in _face_fields(kind):
        value = out.get(name, _MISSING)
        if value is _MISSING or value is None:
            continue
        if isinstance(value, (str, dict)):
            value = [value]  # one face given bare: accept it as a list of one
        if not isinstance(value, list):
            continue  # let the model report the type error
        faces = []
        for i, face in enumerate(value):
            if isinstance(face, str):
                face = {"path": face}
            if isinstance(face, Mapping) and not face.get("opts") and isinstance(face.get("path"), str):
                todo.append((name, i, face["path"]))
                face = {**face, "opts": _PLACEHOLDER}
            faces.append(face)
        out[name] = faces
    if "targetImage" in kind.request_model.model_fields and out.get("targetImage") in (None, _MISSING):
        out.pop("targetImage", None)
        image = out.get("modifyImage")
        if "modifyImage" in kind.request_model.model_fields and isinstance(image, str):
            # As many placeholder faces as sources, so prevalidation's pairing check passes.
            sources = out.get("sourceImage")
            count = len(sources) if isinstance(sources, list) and sources else 1
            out["targetImage"] = [{"path": image, "opts": _PLACEHOLDER}] * count
            todo.append(("targetImage", -1, image))
        elif "modifyVideo" in kind.request_model.model_fields:
            raise ValidationError(
                f"{kind.name}: targetImage is required for videos (face detect reads images, not videos): "
                "give the faces to replace as image URLs (a frame or a crop of each face); their "
                "landmarks are detected for you", field="targetImage", kind=kind.name)
    return out, todo


def needs_detection(kind: JobKind, fields: Mapping[str, Any]) -> bool:
    """Whether `fill_faces` would call face detect for these fields."""
    return bool(_face_fields(kind)) and bool(_normalise(kind, fields)[1])


def prevalidate(kind: JobKind, fields: Mapping[str, Any]) -> None:
    """Validate everything except landmarks still to be detected (raises `ValidationError`)."""
    normalised, _ = _normalise(kind, fields)
    kind.validate(normalised)


def fill_faces(kind: JobKind, fields: Mapping[str, Any], detect: Detector) -> dict[str, Any]:
    """Fields with every missing ``opts`` detected. Sources are single faces (the docs require
    it); a derived ``targetImage`` lists every face found in ``modifyImage``, or its first face
    when one source face replaces it."""
    out, todo = _normalise(kind, fields)
    for name, index, url in todo:
        if index == -1:
            sources = out.get("sourceImage")
            single = isinstance(sources, list) and len(sources) == 1
            found = detect(url, single)
            if not found:
                raise ValidationError(f"{kind.name}: no face found in modifyImage {url}", field="modifyImage",
                                      kind=kind.name)
            if isinstance(sources, list):
                wanted = len(sources)
                if len(found) < wanted:
                    raise ValidationError(
                        f"{kind.name}: modifyImage has {len(found)} face(s) but sourceImage lists {wanted}; "
                        "give targetImage explicitly", field="targetImage", kind=kind.name)
                found = found[:wanted]
            out["targetImage"] = [{"path": url, "opts": opts} for opts in found]
            continue
        found = detect(url, True)
        if not found:
            raise ValidationError(f"{kind.name}: no face found in {name}[{index}] {url}", field=name, kind=kind.name)
        out[name][index] = {**out[name][index], "opts": found[0]}
    return out
