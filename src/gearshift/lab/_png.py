"""The image server's images: deterministic PNG files of an exact size, made from a seed."""

from __future__ import annotations

import functools
import hashlib
import math
import struct
import zlib

from gearshift.errors import UsageError

MIN_SIZE_BYTES, MAX_SIZE_BYTES = 128, 16 * 2**20


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_image(seed: int, size_bytes: int) -> bytes:
    """An RGB PNG of exactly `size_bytes` bytes: noise derived from `seed`, padded by a tEXt chunk.

    Noise keeps the file as large as its pixels. IDAT is stored (zlib level 0): noise would not
    compress anyway, and storing keeps generation cheap (about 1 ms per 256 KiB).
    """
    if (
        isinstance(size_bytes, bool)
        or not isinstance(size_bytes, int)
        or not (MIN_SIZE_BYTES <= size_bytes <= MAX_SIZE_BYTES)
    ):
        raise UsageError(
            f"size_bytes={size_bytes!r} is invalid: give a whole number from {MIN_SIZE_BYTES} "
            f"to {MAX_SIZE_BYTES}"
        )
    budget = size_bytes - 77  # signature, IHDR, IDAT, IEND and the smallest tEXt chunk
    budget -= 6 + 5 * (budget // 16384 + 1)  # zlib header, Adler-32, stored-block headers
    width = max(1, math.isqrt(budget // 3))
    height = max(1, budget // (1 + 3 * width))
    while True:
        stride = 3 * width
        pixels = hashlib.shake_256(b"gearshift-image-%d" % seed).digest(stride * height)
        raw = b"".join(b"\0" + pixels[i : i + stride] for i in range(0, len(pixels), stride))
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
        head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 0))
        pad = size_bytes - len(head) - 12
        if pad == 0 or pad >= 20:
            break
        height -= 1  # the overhead estimate was short: make room for the padding chunk
    filler = (b"gearshift test image " * (pad // 21 + 1))[: pad - 20]
    return head + (_chunk(b"tEXt", b"Comment\0" + filler) if pad else b"") + _chunk(b"IEND", b"")


def with_etag(seed: int, size_bytes: int) -> tuple[bytes, str]:
    data = png_image(seed, size_bytes)
    return data, f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'


# Images asked for with `?bytes=`: a small cache shared by all servers (the bytes are equal).
cached_with_etag = functools.lru_cache(maxsize=16)(with_etag)
