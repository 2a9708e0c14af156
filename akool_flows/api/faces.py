"""Face swap / re-age with plain URLs: fill each face's ``opts`` through face detect.

Akool wants every face as ``{"path": <image url>, "opts": <landmarks>}``, the landmarks coming
from its face detect endpoint. Every caller (operators, the batch engine, so the CLI and the
notebook apps too) accepts, in ``sourceImage`` / ``targetImage``, plain image URLs or
``{"path": ...}`` without ``opts``; for image kinds a missing ``targetImage`` is derived from
``modifyImage`` (the faces found in the picture being edited). Which fields hold faces and which
holds the media comes from the registry (the request model's `FaceRef` lists and the kind's
``face_fields``), not from a list kept here.

Validation runs first with placeholder landmarks, so every other mistake is reported before any
face detect call (`prevalidate`, `planned_body`); detection fills the faces just before the
create (`fill_faces_with` / `afill_faces_with` over a client); the create validates again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from akool_flows.api.errors import AkoolError, ValidationError
from akool_flows.api.kinds import JobKind, nested_model
from akool_flows.api.models import FaceRef, dump_request

__all__ = ["afill_faces", "afill_faces_with", "derivable_face_list", "face_lists", "face_media", "fill_faces",
           "fill_faces_with", "needs_detection", "planned_body", "prevalidate", "required_fields"]

#: Akool's name for the faces to replace, i.e. the faces found *in* the media being edited
#: (every face kind uses it). Only this list can be derived by detecting faces in the media;
#: the other lists (``sourceImage``) are new faces from elsewhere.
TARGET_FACES = "targetImage"
_PLACEHOLDER = "0,0:0,0:0,0:0,0"
_MISSING = object()

#: detect(url, single_face) -> list of landmark strings, one per face found.
Detector = Callable[[str, bool], list[str]]
AsyncDetector = Callable[[str, bool], Awaitable[list[str]]]
#: (field, index, url) of a face whose ``opts`` must be detected; index -1: the derived target list.
_Todo = list[tuple[str, int, str]]


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


def required_fields(kind: JobKind) -> list[str]:
    """The kind's required fields, less a face list face detect can read from the media."""
    derived = derivable_face_list(kind)
    return [f for f in kind.required_fields if f != derived]


def _normalise(kind: JobKind, fields: Mapping[str, Any]) -> tuple[dict[str, Any], _Todo]:
    """Faces as dicts with placeholder ``opts`` where missing; the faces still to detect."""
    out = dict(fields)
    todo: _Todo = []
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
    """Whether filling these fields would call face detect."""
    return bool(kind.face_fields) and bool(face_lists(kind)) and bool(_normalise(kind, fields)[1])


def prevalidate(kind: JobKind, fields: Mapping[str, Any]) -> None:
    """Validate everything except landmarks still to be detected (raises `ValidationError`)."""
    normalised, _ = _normalise(kind, fields)
    kind.validate(normalised)


def planned_body(kind: JobKind, fields: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """The request body to keep until the create: validated (raises `ValidationError`), with every
    face still to detect kept as ``{"path": url}`` and a derivable target list left out.

    No placeholder survives: a body that skipped detection is refused by Akool rather than sent
    with made-up landmarks. For a kind without face lists this is the validated body."""
    if not kind.face_fields:
        return dump_request(kind.validate(fields, strict=strict))
    normalised, todo = _normalise(kind, fields)
    body = dump_request(kind.validate(normalised, strict=strict))
    for name, index, _ in todo:
        if index == -1:
            body.pop(name, None)
        else:
            body[name][index].pop("opts", None)
    return body


def _single(kind: JobKind, out: Mapping[str, Any], index: int) -> bool:
    """Faces listed explicitly are single faces (the docs require it); a derived target list holds
    every face found in the media, one when there is one source face."""
    if index != -1:
        return True
    sources = next((out.get(n) for n in face_lists(kind) if n != TARGET_FACES), None)
    return isinstance(sources, list) and len(sources) == 1


def _apply(kind: JobKind, out: dict[str, Any], todo: _Todo, found_all: list[list[str]]) -> dict[str, Any]:
    media = face_media(kind)
    for (name, index, url), found in zip(todo, found_all):
        if index == -1:
            sources = next((out.get(n) for n in face_lists(kind) if n != TARGET_FACES), None)
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
        if not found:
            raise ValidationError(f"{kind.name}: no face found in {name}[{index}] {url}", field=name, kind=kind.name)
        out[name][index] = {**out[name][index], "opts": found[0]}
    return out


def fill_faces(kind: JobKind, fields: Mapping[str, Any], detect: Detector) -> dict[str, Any]:
    """Fields with every missing ``opts`` detected by ``detect(url, single_face)``."""
    out, todo = _normalise(kind, fields)
    return _apply(kind, out, todo, [detect(url, _single(kind, out, index)) for _, index, url in todo])


async def afill_faces(kind: JobKind, fields: Mapping[str, Any], detect: AsyncDetector) -> dict[str, Any]:
    """`fill_faces` with an async detector; the faces of one request are detected concurrently."""
    out, todo = _normalise(kind, fields)
    # Every detection ends before a failure is raised: none is left running unattended.
    found = await asyncio.gather(*(detect(url, _single(kind, out, index)) for _, index, url in todo),
                                 return_exceptions=True)
    failed = next((f for f in found if isinstance(f, BaseException)), None)
    if failed is not None:
        raise failed
    return _apply(kind, out, todo, list(found))


def _not_a_create(exc: AkoolError) -> None:
    # Face detect creates nothing, whatever the error: a caller deciding about money (the batch
    # engine's create rule) must not read a lost detect answer as a possibly paid job.
    exc.may_have_created = False


def fill_faces_with(client: Any, kind: JobKind, fields: Mapping[str, Any], *,
                    remember: Any = None) -> dict[str, Any]:
    """`fill_faces` through a sync `AkoolClient`'s face detect. ``remember``: an object with
    ``get(detect_url, image_url, single)`` / ``put(..., landmarks)`` that keeps detections (the
    Airflow operators share them between the tasks of a machine: `akool_flows.airflow.faces`)."""
    def detect(url: str, single: bool) -> list[str]:
        found = remember.get(client.detect_url, url, single) if remember is not None else None
        if found is None:
            found = list(client.face_detect(image_url=url, single_face=single).landmarks_str)
            if remember is not None:
                remember.put(client.detect_url, url, single, found)
        return found

    try:
        return fill_faces(kind, fields, detect)
    except AkoolError as exc:
        _not_a_create(exc)
        raise


async def afill_faces_with(client: Any, kind: JobKind, fields: Mapping[str, Any]) -> dict[str, Any]:
    """`fill_faces` through an `AsyncAkoolClient`'s face detect."""
    async def detect(url: str, single: bool) -> list[str]:
        return list((await client.face_detect(image_url=url, single_face=single)).landmarks_str)

    try:
        return await afill_faces(kind, fields, detect)
    except AkoolError as exc:
        _not_a_create(exc)
        raise
