"""A small, playable H.264 MP4 written in pure Python (no encoder, no ffmpeg).

Every macroblock is I_PCM: its samples are stored raw, which H.264 allows in any profile, so
the "encoder" is a bit writer. Each frame is one IDR slice (Constrained Baseline, CAVLC), and the
frames go into an ISO-BMFF file (``ftyp``, ``moov`` with one ``avc1`` track, ``mdat``) that
browsers play: a result of a video kind is something a notebook can show and a test can play.

Sizes: 128 x 96 pixels, 6 frames at 6 fps (1 s) is ~110 kB.
"""

from __future__ import annotations

import struct

__all__ = ["h264_mp4"]


class _Bits:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def u(self, bits: int, value: int) -> None:
        for i in range(bits - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                self.acc = self.n = 0

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while self.n:
            self.u(1, 0)

    def raw(self, data: bytes) -> None:
        assert self.n == 0
        self.out += data

    def trailing(self) -> bytes:
        self.u(1, 1)  # rbsp_stop_one_bit
        self.align_zero()
        return bytes(self.out)


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit with emulation prevention (00 00 0x -> 00 00 03 0x for x <= 3)."""
    out = bytearray([header])
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _sps(mb_w: int, mb_h: int) -> bytes:
    b = _Bits()
    b.u(8, 66)      # profile_idc: Baseline
    b.u(8, 0xC0)    # constraint_set0 + set1: Constrained Baseline
    b.u(8, 30)      # level_idc 3.0
    b.ue(0)         # seq_parameter_set_id
    b.ue(0)         # log2_max_frame_num_minus4
    b.ue(2)         # pic_order_cnt_type 2: output order = decoding order
    b.ue(1)         # max_num_ref_frames
    b.u(1, 0)       # gaps_in_frame_num_value_allowed_flag
    b.ue(mb_w - 1)  # pic_width_in_mbs_minus1
    b.ue(mb_h - 1)  # pic_height_in_map_units_minus1
    b.u(1, 1)       # frame_mbs_only_flag
    b.u(1, 1)       # direct_8x8_inference_flag
    b.u(1, 0)       # frame_cropping_flag
    b.u(1, 0)       # vui_parameters_present_flag
    return _nal(0x67, b.trailing())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)      # pic_parameter_set_id
    b.ue(0)      # seq_parameter_set_id
    b.u(1, 0)    # entropy_coding_mode_flag: CAVLC
    b.u(1, 0)    # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)      # num_slice_groups_minus1
    b.ue(0)      # num_ref_idx_l0_default_active_minus1
    b.ue(0)      # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)    # weighted_pred_flag
    b.u(2, 0)    # weighted_bipred_idc
    b.se(0)      # pic_init_qp_minus26
    b.se(0)      # pic_init_qs_minus26
    b.se(0)      # chroma_qp_index_offset
    b.u(1, 1)    # deblocking_filter_control_present_flag
    b.u(1, 0)    # constrained_intra_pred_flag
    b.u(1, 0)    # redundant_pic_cnt_present_flag
    return _nal(0x68, b.trailing())


def _idr_slice(index: int, macroblocks: list[bytes]) -> bytes:
    b = _Bits()
    b.ue(0)           # first_mb_in_slice
    b.ue(7)           # slice_type: I (all slices of the picture)
    b.ue(0)           # pic_parameter_set_id
    b.u(4, 0)         # frame_num (log2_max_frame_num = 4)
    b.ue(index % 2)   # idr_pic_id: consecutive IDR pictures differ
    b.u(1, 0)         # no_output_of_prior_pics_flag
    b.u(1, 0)         # long_term_reference_flag
    b.se(0)           # slice_qp_delta
    b.ue(1)           # disable_deblocking_filter_idc: off (raw samples need none)
    for mb in macroblocks:
        b.ue(25)      # mb_type I_PCM
        b.align_zero()  # pcm_alignment_zero_bit
        b.raw(mb)     # 256 luma + 64 Cb + 64 Cr samples
    return _nal(0x65, b.trailing())


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _moov(width: int, height: int, sps: bytes, pps: bytes, sizes: list[int], fps: int, offset: int) -> bytes:
    n = len(sizes)
    ms = n * 1000 // fps
    avcc = _box(b"avcC", bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]), struct.pack(">H", len(sps)), sps,
                bytes([1]), struct.pack(">H", len(pps)), pps)
    name = b"akool_flows sandbox"
    avc1 = _box(b"avc1", bytes(6), struct.pack(">HHH12xHHIIIH", 1, 0, 0, width, height, 0x00480000, 0x00480000, 0, 1),
                bytes([len(name)]) + name.ljust(31, b"\0"), struct.pack(">Hh", 0x18, -1), avcc)
    stbl = _box(b"stbl",
                _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
                _full(b"stts", 0, 0, struct.pack(">III", 1, n, 1000 // fps)),
                _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, n, 1)),
                _full(b"stsz", 0, 0, struct.pack(">II", 0, n), *(struct.pack(">I", s) for s in sizes)),
                _full(b"stco", 0, 0, struct.pack(">II", 1, offset)))
    minf = _box(b"minf", _full(b"vmhd", 0, 1, bytes(8)),
                _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))), stbl)
    mdia = _box(b"mdia", _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, 1000, ms, 0x55C4, 0)),
                _full(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\0"), minf)
    tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIIII8xHHHH", 0, 0, 1, 0, ms, 0, 0, 0, 0), _MATRIX,
                 struct.pack(">II", width << 16, height << 16))
    mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIIIIH10x", 0, 0, 1000, ms, 0x00010000, 0x0100), _MATRIX,
                 bytes(24), struct.pack(">I", 2))
    return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))


def _ycbcr(rgb: bytes) -> tuple[int, int, int]:
    r, g, b = rgb
    y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256
    cb = 128 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256
    cr = 128 + (112.439 * r - 94.154 * g - 18.285 * b) / 256
    return tuple(max(16, min(235, round(v))) for v in (y, cb, cr))  # type: ignore[return-value]


def _frame(index: int, frames: int, mb_w: int, mb_h: int, colour: bytes) -> list[bytes]:
    """One frame's macroblocks: the seed's colour with a bright bar sweeping across."""
    y0, cb, cr = _ycbcr(colour)
    width = mb_w * 16
    bar = (index * width) // frames
    luma_row = bytes(235 if bar <= x < bar + width // 8 else y0 for x in range(width))
    chroma = bytes([cb]) * 64 + bytes([cr]) * 64
    out = []
    for my in range(mb_h):
        for mx in range(mb_w):
            rows = []
            for y in range(16):
                shade = (my * 16 + y) // 4  # a little vertical gradient
                row = luma_row[mx * 16:(mx + 1) * 16]
                rows.append(bytes(max(16, min(235, v - shade)) for v in row))
            out.append(b"".join(rows) + chroma)
    return out


def h264_mp4(seed: bytes, width: int = 128, height: int = 96, frames: int = 6, fps: int = 6) -> bytes:
    """An MP4 of `frames` H.264 frames, its colour taken from `seed`."""
    if width % 16 or height % 16:
        raise ValueError("width and height must be multiples of 16")
    mb_w, mb_h = width // 16, height // 16
    sps, pps = _sps(mb_w, mb_h), _pps()
    samples = []
    for i in range(frames):
        nal = _idr_slice(i, _frame(i, frames, mb_w, mb_h, seed[:3]))
        samples.append(struct.pack(">I", len(nal)) + nal)
    sizes = [len(s) for s in samples]
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    # moov's size does not depend on the offset it holds: build it once to learn where mdat starts.
    offset = len(ftyp) + len(_moov(width, height, sps, pps, sizes, fps, 0)) + 8
    moov = _moov(width, height, sps, pps, sizes, fps, offset)
    return ftyp + moov + _box(b"mdat", *samples)
