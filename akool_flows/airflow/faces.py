"""Face swap / re-age with plain URLs: fill each face's ``opts`` through face detect.

Akool wants every face as ``{"path": <image url>, "opts": <landmarks>}``, the landmarks coming
from its face detect endpoint. The operators accept, in ``sourceImage`` / ``targetImage``,
plain image URLs or ``{"path": ...}`` without ``opts``; for image kinds a missing
``targetImage`` is derived from ``modifyImage`` (the faces found in the picture being edited).
Which fields hold faces and which holds the media comes from the registry (the request
model's `FaceRef` lists and the kind's ``face_fields``), not from a list kept here.

Validation runs first with placeholder landmarks, so every other mistake is reported before
any face detect call; detection fills the placeholders; the caller validates again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from akool_flows.api.errors import ValidationError
from akool_flows.api.kinds import JobKind, nested_model
from akool_flows.api.models import FaceRef

__all__ = ["derivable_face_list", "face_lists", "face_media", "fill_faces", "prevalidate", "needs_detection"]

#: Akool's name for the faces to replace, i.e. the faces found *in* the media being edited
#: (every face kind uses it). Only this list can be derived by detecting faces in the media;
#: the other lists (``sourceImage``) are new faces from elsewhere.
TARGET_FACES = "targetImage"
_PLACEHOLDER = "0,0:0,0:0,0:0,0"
_MISSING = object()

#: detect(url, single_face) -> list of landmark strings, one per face found.
Detector = Callable[[str, bool], list[str]]


def face_lists(kind: JobKind) -> list[str]:
    """The request fields that hold lists of faces: those whose items are `FaceRef` models."""
    return [n for n, f in kind.request_model.model_fields.items() if nested_model(f.annotation) is FaceRef]


def face_media(kind: JobKind) -> str | None:
    """The registry's face-bearing media field (``modifyImage`` / ``modifyVideo``), if any."""
    return kind.face_fields[0] if kind.face_fields else None


def derivable_face_list(kind: JobKind) -> str | None:
    """The face list that may be left out because face detect can read it from the media.

    Face detect reads images only. The registry describes the media through ``result_media``:
    a face swap or re-age returns the same kind of media it edits.
    """
    if face_media(kind) and kind.result_media == "image" and TARGET_FACES in face_lists(kind):
        return TARGET_FACES
    return None


def _normalise(kind: JobKind, fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, int, str]]]:
    """Faces as dicts; the (field, index, url) of every face whose ``opts`` must be detected.
    A missing derivable face list becomes one entry marked with index -1."""
    out = dict(fields)
    todo: list[tuple[str, int, str]] = []
    lists = face_lists(kind)
    for name in lists:
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
    media = face_media(kind)
    if media is None or TARGET_FACES not in lists or out.get(TARGET_FACES) not in (None, _MISSING):
        return out, todo
    out.pop(TARGET_FACES, None)
    image = out.get(media)
    if derivable_face_list(kind) and isinstance(image, str):
        # As many placeholder faces as sources, so prevalidation's pairing check passes.
        sources = [out.get(n) for n in lists if n != TARGET_FACES]
        count = len(sources[0]) if sources and isinstance(sources[0], list) and sources[0] else 1
        out[TARGET_FACES] = [{"path": image, "opts": _PLACEHOLDER}] * count
        todo.append((TARGET_FACES, -1, image))
    elif not derivable_face_list(kind):
        raise ValidationError(
            f"{kind.name}: {TARGET_FACES} is required for {kind.result_media}s (face detect reads images, not "
            f"{kind.result_media}s): give the faces to replace as image URLs (a frame or a crop of each face); "
            "their landmarks are detected for you", field=TARGET_FACES, kind=kind.name)
    return out, todo


def needs_detection(kind: JobKind, fields: Mapping[str, Any]) -> bool:
    """Whether `fill_faces` would call face detect for these fields."""
    return bool(face_lists(kind)) and bool(_normalise(kind, fields)[1])


def prevalidate(kind: JobKind, fields: Mapping[str, Any]) -> None:
    """Validate everything except landmarks still to be detected (raises `ValidationError`)."""
    normalised, _ = _normalise(kind, fields)
    kind.validate(normalised)


def fill_faces(kind: JobKind, fields: Mapping[str, Any], detect: Detector) -> dict[str, Any]:
    """Fields with every missing ``opts`` detected. Faces listed explicitly are single faces
    (the docs require it); a derived target list holds every face found in the media, or as
    many as there are source faces."""
    out, todo = _normalise(kind, fields)
    media = face_media(kind)
    for name, index, url in todo:
        if index == -1:
            sources = next((out.get(n) for n in face_lists(kind) if n != TARGET_FACES), None)
            single = isinstance(sources, list) and len(sources) == 1
            found = detect(url, single)
            if not found:
                raise ValidationError(f"{kind.name}: no face found in {media} {url}", field=media, kind=kind.name)
            if isinstance(sources, list):
                wanted = len(sources)
                if len(found) < wanted:
                    raise ValidationError(
                        f"{kind.name}: {media} has {len(found)} face(s) but the source faces list {wanted}; "
                        f"give {TARGET_FACES} explicitly", field=TARGET_FACES, kind=kind.name)
                found = found[:wanted]
            out[TARGET_FACES] = [{"path": url, "opts": opts} for opts in found]
            continue
        found = detect(url, True)
        if not found:
            raise ValidationError(f"{kind.name}: no face found in {name}[{index}] {url}", field=name, kind=kind.name)
        out[name][index] = {**out[name][index], "opts": found[0]}
    return out
