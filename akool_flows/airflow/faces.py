"""Face swap / re-age with plain URLs in the operators: the logic is `akool_flows.api.faces`
(shared with the batch engine, the CLI and the notebook apps); this module keeps the names the
operators and their users import, and `MachineFaceCache`.

Mapped face-swap tasks usually share their new face (one ``sourceImage``, many posters): each
task detected it again - two detect calls per task where one is new. `MachineFaceCache` keeps
each detection for `FACE_CACHE_SECONDS` in a small private file per (detect host, image URL,
single-face) on the machine (`machine_cache` rules; the URL is stored only as a hash, since a
signed URL is a credential), so the tasks of a run detect a shared image once. The cache is
short-lived on purpose: landmarks belong to the image behind the URL, which may change.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from akool_flows.airflow.machine_cache import cache_dir, read_private_json, write_private_json
from akool_flows.api.faces import (
    TARGET_FACES,
    derivable_face_list,
    face_lists,
    face_media,
    fill_faces,
    fill_faces_with,
    needs_detection,
    prevalidate,
)

__all__ = ["FACE_CACHE_SECONDS", "TARGET_FACES", "MachineFaceCache", "derivable_face_list", "face_lists",
           "face_media", "fill_faces", "fill_faces_with", "needs_detection", "prevalidate"]

#: How long a detection is reused by other tasks on the machine (seconds).
FACE_CACHE_SECONDS = 3600.0


class MachineFaceCache:
    """Face detect answers shared by the task processes of one machine (``remember=`` of
    `fill_faces_with`)."""

    def __init__(self, seconds: float = FACE_CACHE_SECONDS) -> None:
        self.folder = cache_dir("faces")
        self.seconds = seconds

    def _path(self, detect_url: str, image_url: str, single: bool) -> Any:
        key = hashlib.sha256("\0".join((detect_url, image_url, str(bool(single)))).encode("utf-8")).hexdigest()
        return self.folder / f"{key[:40]}.json" if self.folder is not None else None

    def get(self, detect_url: str, image_url: str, single: bool) -> list[str] | None:
        path = self._path(detect_url, image_url, single)
        data = read_private_json(path) if path is not None else None
        found = data.get("landmarks") if data is not None else None
        return list(found) if isinstance(found, list) and all(isinstance(x, str) for x in found) else None

    def put(self, detect_url: str, image_url: str, single: bool, landmarks: list[str]) -> None:
        path = self._path(detect_url, image_url, single)
        if path is not None and landmarks:
            write_private_json(path, {"landmarks": list(landmarks), "expires_at": time.time() + self.seconds})
