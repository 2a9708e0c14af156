"""Small, valid media files for result URLs, generated in code (no binary assets to ship).

Every result URL the sandbox hands out points at ``/_sandbox/files/<name>``; the bytes
depend only on the name, so a download can be checked for integrity and two results
never share content.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

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


@lru_cache(maxsize=4096)
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
        return _mp4(seed)
    if ext == "txt":
        return f"Akool sandbox result {name}\n".encode()
    if ext == "json":
        return b'{"sandbox_result": "' + name.encode() + b'"}'
    raise ValueError(f"unsupported file extension {ext!r}; served: {', '.join(sorted(CONTENT_TYPES))}")


def _png(seed: bytes, size: int = 16) -> bytes:
    """A size x size RGB PNG in a colour derived from ``seed``, with a diagonal stripe."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    fg, bg = seed[0:3], bytes(255 - b for b in seed[0:3])
    rows = b"".join(b"\x00" + b"".join(fg if x == y else bg for x in range(size)) for y in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


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


def _wav(seed: bytes, samples: int = 8000) -> bytes:
    """One second of 8 kHz mono 16-bit PCM silence with the seed in a LIST/INFO chunk."""
    data = bytes(samples * 2)
    info = b"INFO" + b"ICMT" + struct.pack("<I", 32) + seed
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = (
        b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"LIST" + struct.pack("<I", len(info)) + info
        + b"data" + struct.pack("<I", len(data)) + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _mp4(seed: bytes) -> bytes:
    """A structurally valid ISO-BMFF file: ``ftyp``, ``moov``/``mvhd`` (1 s), ``udta``, ``mdat``.

    It parses as MP4 (box sizes, brands, movie header) but holds no decodable track:
    enough to test downloads, content types and integrity, not playback.
    """

    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    matrix = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
    mvhd = box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, 1000, 1000)  # version/flags, ctime, mtime, timescale, duration
        + struct.pack(">IH10x", 0x00010000, 0x0100)  # rate 1.0, volume 1.0, reserved
        + matrix
        + bytes(24)  # pre_defined
        + struct.pack(">I", 1),  # next_track_ID
    )
    udta = box(b"udta", box(b"\xa9cmt", seed))
    moov = box(b"moov", mvhd + udta)
    return ftyp + moov + box(b"mdat", b"")
