"""Face swap / re-age with plain URLs in the operators: the logic is `akool_flows.api.faces`
(shared with the batch engine, the CLI and the notebook apps); this module keeps the names the
operators and their users import."""

from __future__ import annotations

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

__all__ = ["TARGET_FACES", "derivable_face_list", "face_lists", "face_media", "fill_faces", "fill_faces_with",
           "needs_detection", "prevalidate"]
