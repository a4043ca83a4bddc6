"""CRC-32C (Castagnoli) of many records at once, with numpy: TFRecord checksums.

TensorBoard's event files protect every record with a masked CRC-32C, which Python's
standard library does not compute (``zlib.crc32`` is the other polynomial), and a byte-
at-a-time loop in Python costs microseconds per record. Two facts make it vectorise:

* A register that starts at zero is unchanged by leading zero bytes, and starting from
  ``0xFFFFFFFF`` is the same as flipping the first four message bytes and starting from
  zero (slicing-by-4 XORs the register with the next word). So the records of one read
  are laid side by side in a matrix, right-aligned on zero padding with their first four
  bytes flipped, and all registers advance together four bytes per step.
* The CRC is linear, so a long record is cut into equal lanes that advance together; the
  lanes' registers are then joined, each one shifted over the lanes after it by a table
  computed once.

Records are grouped by length (powers of two) so padding stays small, in chunks so the
matrices stay in cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

_POLY = 0x82F63B78  # CRC-32C, reflected
_MASK_DELTA = 0xA282EAD8
LANE = 1024
"""Bytes per lane of a long record."""
_LONG = 4 * LANE
"""Records longer than this are cut into lanes."""
_CHUNK = 8192
"""Records per matrix."""

U32 = npt.NDArray[np.uint32]


def _tables() -> tuple[U32, U32, U32, U32]:
    base = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        base[i] = crc
    t1 = (base >> 8) ^ base[base & 0xFF]
    t2 = (t1 >> 8) ^ base[t1 & 0xFF]
    t3 = (t2 >> 8) ^ base[t2 & 0xFF]
    return base, t1, t2, t3


_T0, _T1, _T2, _T3 = _tables()
_TABLE = _T0.tolist()


def _advance(register: U32, matrix: npt.NDArray[np.uint8]) -> U32:
    """Registers after each row of ``matrix`` (width a multiple of 4), no final xor."""
    words = matrix.view("<u4")
    scratch = np.empty_like(register)
    for j in range(words.shape[1]):
        register = register ^ words[:, j]
        np.bitwise_and(register, 0xFF, out=scratch)
        result = _T3[scratch]
        np.right_shift(register, 8, out=scratch)
        scratch &= 0xFF
        result ^= _T2[scratch]
        np.right_shift(register, 16, out=scratch)
        scratch &= 0xFF
        result ^= _T1[scratch]
        np.right_shift(register, 24, out=scratch)
        result ^= _T0[scratch]
        register = result
    return register


@lru_cache(maxsize=1)
def _lane_shift() -> tuple[list[int], list[int], list[int], list[int]]:
    """Byte tables of the linear map "run ``LANE`` zero bytes through a register"."""
    basis = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
    images = _advance(basis, np.zeros((32, LANE), dtype=np.uint8))
    bits = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(bool)
    tables = []
    for k in range(4):
        chosen = np.where(bits, images[8 * k : 8 * k + 8][None, :], np.uint32(0))
        tables.append(np.bitwise_xor.reduce(chosen, axis=1).astype(np.uint32).tolist())
    return tables[0], tables[1], tables[2], tables[3]


def _short(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _long(data: bytes) -> int:
    lanes = -(-len(data) // LANE)
    padded = np.zeros(lanes * LANE, dtype=np.uint8)
    start = len(padded) - len(data)
    padded[start:] = np.frombuffer(data, dtype=np.uint8)
    padded[start : start + 4] ^= 0xFF
    registers = _advance(np.zeros(lanes, dtype=np.uint32), padded.reshape(lanes, LANE)).tolist()
    s0, s1, s2, s3 = _lane_shift()
    crc = 0
    for lane in registers:
        crc = s0[crc & 0xFF] ^ s1[(crc >> 8) & 0xFF] ^ s2[(crc >> 16) & 0xFF] ^ s3[crc >> 24]
        crc ^= lane
    return crc ^ 0xFFFFFFFF


def _bucket(records: list[bytes], width: int) -> U32:
    """CRCs of records no longer than ``width`` (a power of two >= 4), at least 4 bytes each."""
    count = len(records)
    sizes = np.fromiter(map(len, records), dtype=np.int64, count=count)
    flat = np.frombuffer(b"".join(records), dtype=np.uint8)
    matrix = np.zeros((count, width), dtype=np.uint8)
    starts = np.arange(count, dtype=np.int64) * width + (width - sizes)
    offsets = np.cumsum(sizes) - sizes
    where = np.repeat(starts - offsets, sizes) + np.arange(flat.size, dtype=np.int64)
    plain = matrix.reshape(-1)
    plain[where] = flat
    for k in range(4):
        plain[starts + k] ^= 0xFF
    registers = _advance(np.zeros(count, dtype=np.uint32), matrix)
    return np.asarray(registers ^ np.uint32(0xFFFFFFFF), dtype=np.uint32)


def crc32c_many(records: Sequence[bytes]) -> U32:
    """The CRC-32C of each record."""
    count = len(records)
    out = np.zeros(count, dtype=np.uint32)
    groups: dict[int, list[int]] = {}
    for i, record in enumerate(records):
        size = len(record)
        if size < 4:
            out[i] = _short(record)
        elif size > _LONG:
            out[i] = _long(record)
        else:
            groups.setdefault(1 << (size - 1).bit_length(), []).append(i)
    for width, members in groups.items():
        for first in range(0, len(members), _CHUNK):
            chosen = members[first : first + _CHUNK]
            out[chosen] = _bucket([records[i] for i in chosen], width)
    return out


def masked(crcs: U32) -> U32:
    """TFRecord's masked form of CRC-32C values (rotated right 15 bits, plus a constant)."""
    rotated = (crcs >> np.uint32(15)) | (crcs << np.uint32(17))
    return np.asarray((rotated.astype(np.uint64) + _MASK_DELTA) & 0xFFFFFFFF, dtype=np.uint32)
