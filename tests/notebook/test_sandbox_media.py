"""The sandbox's result files are real media: a PNG of a sensible size, a WAV tone, an H.264 MP4.

(Playback itself is checked in a real browser: test_browser.py, the <video> reaches readyState >= 2.)
"""

from __future__ import annotations

import struct
import wave
import zlib
from io import BytesIO

from akool_flows.sandbox.files import file_bytes


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, bytes]:
    out, i, end = {}, start, len(data) if end is None else end
    while i < end:
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        out[kind] = data[i + 8:i + size]
        i += size
    return out


def test_png_is_256_pixels_square_and_decodes() -> None:
    data = file_bytes("0123456789abcdef01234567.png")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (256, 256)
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert len(zlib.decompress(data[41:41 + idat_len])) == height * (1 + 3 * width)


def test_wav_is_a_one_second_tone() -> None:
    with wave.open(BytesIO(file_bytes("0123456789abcdef01234567.wav"))) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (1, 8000, 8000)
        frames = wav.readframes(8000)
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    assert max(samples) > 5000 and min(samples) < -5000  # sound, not silence


def test_mp4_holds_an_h264_track_of_six_frames() -> None:
    data = file_bytes("0123456789abcdef01234567.mp4")
    top = _boxes(data)
    assert top[b"ftyp"][:4] == b"isom" and set(top) == {b"ftyp", b"moov", b"mdat"}
    stbl = _boxes(_boxes(_boxes(_boxes(_boxes(top[b"moov"])[b"trak"])[b"mdia"])[b"minf"])[b"stbl"])
    stsd = stbl[b"stsd"]
    assert stsd[12:16] == b"avc1" and b"avcC" in stsd
    width, height = struct.unpack(">HH", stsd[8 + 8 + 24:8 + 8 + 28])
    assert (width, height) == (128, 96)
    sizes = struct.unpack(">6I", stbl[b"stsz"][12:])
    assert sum(sizes) == len(top[b"mdat"])
    # Each sample is one IDR slice NAL unit (type 5), length-prefixed.
    first = top[b"mdat"]
    assert struct.unpack(">I", first[:4])[0] == sizes[0] - 4 and first[4] & 0x1F == 5
    assert file_bytes("a.mp4") != file_bytes("b.mp4")
