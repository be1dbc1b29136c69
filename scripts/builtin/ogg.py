"""Ogg Opus clips that are the same bytes on every build.

libsndfile gives each Ogg stream a random serial number and pads OpusTags with zeros; the writer fixes
the serial (the CRC-32 of the clip's relative path), drops the padding and recomputes page checksums.
"""
from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

OPUS_LEVEL = None  # libsndfile default Opus bitrate (about 25 kbit/s at 16 kHz)


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _ogg_crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


def _lacing(n: int) -> bytes:
    return bytes([255] * (n // 255) + [n % 255])


def canonical_ogg(data: bytes, serial: int) -> bytes:
    """Fix the stream serial number (libsndfile picks a random one), drop the OpusTags
    zero padding, recompute page CRCs.  Needs single-stream Ogg with OpusTags on one page."""
    pages, pos = [], 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        nseg = data[pos + 26]
        seg = data[pos + 27:pos + 27 + nseg]
        body_start = pos + 27 + nseg
        body_end = body_start + sum(seg)
        pages.append([bytearray(data[pos:pos + 27]), bytes(seg), data[body_start:body_end]])
        pos = body_end
    out = bytearray()
    for k, (head, seg, body) in enumerate(pages):
        if body.startswith(b"OpusTags"):
            if seg[-1] == 255 or (k + 1 < len(pages) and pages[k + 1][0][5] & 1):
                raise ValueError("OpusTags spans several pages")
            vendor_len = struct.unpack_from("<I", body, 8)[0]
            p = 12 + vendor_len
            count = struct.unpack_from("<I", body, p)[0]
            p += 4
            for _ in range(count):
                p += 4 + struct.unpack_from("<I", body, p)[0]
            body, seg = body[:p], _lacing(p)
        head[26] = len(seg)
        struct.pack_into("<I", head, 14, serial)
        struct.pack_into("<I", head, 22, 0)
        page = bytes(head) + seg + body
        out += page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]
    return bytes(out)


def encode_opus(wave: np.ndarray, sample_rate: int, serial: int) -> bytes:
    buf = io.BytesIO()
    kw = {} if OPUS_LEVEL is None else {"compression_level": OPUS_LEVEL}
    sf.write(buf, wave.astype(np.float32), sample_rate, format="OGG", subtype="OPUS", **kw)
    return canonical_ogg(buf.getvalue(), serial)


