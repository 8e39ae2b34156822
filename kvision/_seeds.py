"""Distinct, reproducible seeds for a layer's random sublayers."""

import zlib


def child_seed(seed, name):
    """A seed for the sublayer ``name`` of a layer seeded with ``seed``.

    Two sublayers given the same seed would draw the same random stream
    (e.g. dropout masks in step); deriving each one's seed from its name
    keeps them independent while ``seed`` still fixes them all. ``None``
    stays ``None`` (unseeded).
    """
    if seed is None:
        return None
    return zlib.crc32(f"{seed}/{name}".encode()) & 0x7FFFFFFF
