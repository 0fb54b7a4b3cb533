"""Named random streams: one root ``SeedSequence`` per run, one child stream per subsystem.

A child is derived from the root seed and the stream's *name* (not the order in which streams
are asked for), so switching a policy or a recorder on does not shift any other stream.
"""

from __future__ import annotations

import zlib

import numpy as np


class Streams:
    def __init__(self, seed: int):
        self.seed = int(seed)
        self._cache: dict[str, np.random.Generator] = {}

    def get(self, name: str) -> np.random.Generator:
        gen = self._cache.get(name)
        if gen is None:
            key = zlib.crc32(name.encode("utf-8"))
            gen = np.random.Generator(
                np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(key,)))
            )
            self._cache[name] = gen
        return gen
