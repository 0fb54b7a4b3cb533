"""Packed bitfields: each peer's pieces as 64-bit words, for AND-NOT interest tests over a
whole neighbourhood at once."""

from __future__ import annotations

import numpy as np


def pack_words(bits: np.ndarray) -> np.ndarray:
    """Bitfields as little-endian uint64 words: piece ``p`` is bit ``p & 63`` of word ``p >> 6``."""
    n, p = bits.shape
    padded = np.zeros((n, -(-p // 64) * 64), dtype=bool)
    padded[:, :p] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)
