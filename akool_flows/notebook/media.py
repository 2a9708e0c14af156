"""Result media as something to look at: thumbnails, players, before/after side by side.

What a result URL holds comes from the registry (`JobKind.result_media`), else from the URL's
extension. Which input a result is the "after" of comes from the registry too: the kind's
face-bearing field (face swap, re-age), else an ``origin`` image field (background change).

Players never load anything until asked (``preload="none"``) and images load lazily, so a page
of a 100,000-row grid costs what its visible rows cost; the grid draws only the page shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from akool_flows.notebook.render import e

__all__ = ["before_field", "media_of", "preview_html"]

_BY_EXT = {"png": "image", "jpg": "image", "jpeg": "image", "webp": "image", "gif": "image",
           "mp4": "video", "webm": "video", "mov": "video", "mp3": "audio", "wav": "audio", "m4a": "audio",
           "ogg": "audio", "flac": "audio"}
_PLAYABLE = ("image", "video", "audio")


def _ext(url: str) -> str:
    last = urlsplit(url).path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def media_of(url: Any, kind_media: str = "none") -> str | None:
    """image, video or audio for a result URL (None: not something to preview)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    by_ext = _BY_EXT.get(_ext(url))
    return by_ext or (kind_media if kind_media in _PLAYABLE else None)


def before_field(kind: Any) -> str | None:
    """The request field whose media the result transforms (shown as "before"), or None."""
    if kind.face_fields:
        return str(kind.face_fields[0])
    return next((f for f in kind.field_names if "origin" in f and "img" in f), None)


def _one(url: str, media: str, css: str) -> str:
    u = e(url)
    if media == "image":
        return (f'<a href="{u}" target="_blank" rel="noopener noreferrer"><img class="akool-thumb {css}" src="{u}" '
                f'loading="lazy" alt="{css.removeprefix("akool-")}"></a>')
    if media == "video":
        return f'<video class="akool-player {css}" src="{u}" preload="none" controls muted playsinline></video>'
    return f'<audio class="akool-player {css}" src="{u}" preload="none" controls></audio>'


def preview_html(url: Any, *, kind_media: str = "none", before: Any = None) -> str:
    """A cell: the result's thumbnail or player, with the input beside it when there is a before."""
    media = media_of(url, kind_media)
    if media is None:
        return ""
    after = _one(url, media, "akool-after")
    before_media = media_of(before, media)
    if before_media is None:
        return after
    return (f'<span class="akool-before-after">{_one(before, before_media, "akool-before")}'
            f'<span class="akool-arrow">→</span>{after}</span>')


def previews(urls: Sequence[Any], kind: Any, bodies: Sequence[dict[str, Any]] | None = None) -> list[str]:
    """One preview cell per row (bodies: the plan's request bodies, for the before image)."""
    field = before_field(kind)
    out = []
    for i, url in enumerate(urls):
        before = bodies[i].get(field) if field and bodies is not None and i < len(bodies) else None
        out.append(preview_html(url, kind_media=kind.result_media, before=before))
    return out
