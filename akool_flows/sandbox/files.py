"""Small, real media files for result URLs, generated in code (no binary assets to ship).

Every result URL the sandbox hands out points at ``/_sandbox/files/<name>``; the bytes
depend only on the name, so a download can be checked for integrity and two results
never share content. They are real media a browser shows and plays: a 256 x 256 PNG, a
one-second WAV tone, a one-second H.264 MP4 (`akool_flows.sandbox.h264`), and an MP3 of
silence (valid MPEG audio frames; encoding sound needs an encoder).
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
import zlib
from array import array
from functools import lru_cache

from akool_flows.sandbox.h264 import h264_mp4

__all__ = ["CONTENT_TYPES", "content_type", "file_bytes"]

CONTENT_TYPES: dict[str, str] = {
    "png": "image/png",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "mp4": "video/mp4",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
}


def content_type(name: str) -> str | None:
    """MIME type served for ``name``, or ``None`` when the extension is not served."""
    return CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None


@lru_cache(maxsize=256)  # a video is ~110 kB: a few hundred recent files, not thousands
def file_bytes(name: str) -> bytes:
    """The bytes served for ``name`` (deterministic); ``ValueError`` for an unknown extension."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    seed = hashlib.sha256(name.encode()).digest()
    if ext == "png":
        return _png(seed)
    if ext == "mp3":
        return _mp3(seed)
    if ext == "wav":
        return _wav(seed)
    if ext == "mp4":
        return h264_mp4(seed)
    if ext == "txt":
        return f"Akool sandbox result {name}\n".encode()
    if ext == "json":
        return b'{"sandbox_result": "' + name.encode() + b'"}'
    raise ValueError(f"unsupported file extension {ext!r}; served: {', '.join(sorted(CONTENT_TYPES))}")


def _png(seed: bytes, size: int = 256) -> bytes:
    """A size x size RGB PNG: the seed's colour shading into its complement, with diagonal stripes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    fg = seed[0:3]
    bg = bytes(255 - b for b in fg)
    stripe = 24
    rows = []
    for y in range(size):
        t = y / (size - 1)
        shade = bytes(round(a * (1 - t) + b * t) for a, b in zip(fg, bg))
        pixels = bytearray(shade * size)
        for x in range(size):
            if (x + y) // stripe % 4 == 0:
                pixels[3 * x:3 * x + 3] = b"\xff\xff\xff"
        rows.append(b"\x00" + bytes(pixels))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + \
        chunk(b"IEND", b"")


def _mp3(seed: bytes, frames: int = 20) -> bytes:
    """About half a second of MPEG-1 Layer III silence (128 kbit/s, 44.1 kHz, stereo).

    A frame whose side information is all zero decodes to silence; 144 * 128000 / 44100
    gives 417-byte frames without padding. An ID3v2 tag carries the seed so files differ.
    """
    header = bytes((0xFF, 0xFB, 0x90, 0x00))
    frame = header + bytes(417 - len(header))
    text = b"\x03" + seed.hex().encode()  # a TIT2 (title) frame, encoding 3 = UTF-8
    id3_frame = b"TIT2" + struct.pack(">I", len(text)) + b"\x00\x00" + text
    size = len(id3_frame)
    syncsafe = bytes(((size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F))
    return b"ID3\x04\x00\x00" + syncsafe + id3_frame + frame * frames


def _wav(seed: bytes, rate: int = 8000) -> bytes:
    """One second of 8 kHz mono 16-bit PCM: a soft tone (220-660 Hz by the seed) fading in and out,
    with the seed in a LIST/INFO chunk."""
    freq = 220 + seed[3] / 255 * 440
    samples = array("h", (int(8000 * math.sin(2 * math.pi * freq * i / rate) * min(1.0, i / 800, (rate - i) / 800))
                          for i in range(rate)))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    data = samples.tobytes()
    info = b"INFO" + b"ICMT" + struct.pack("<I", 32) + seed
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = (
        b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"LIST" + struct.pack("<I", len(info)) + info
        + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body
