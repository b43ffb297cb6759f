"""The held-out test split: a fraction of the data chosen by content hash, so a sample's split
never changes as the data set grows and no test sample ever enters the pool."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from delift_dvc.data.samples import Sample

__all__ = ["held_out", "split_pool"]


def held_out(sample_id: str, fraction: float, seed: int) -> bool:
    """Whether a sample is in the test split: sha256 of "seed:id", as a number in [0, 1),
    is below `fraction`."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < fraction


def split_pool(samples: Sequence[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(pool, test) of `samples` by `held_out`, each in input order."""
    pool, test = [], []
    for sample in samples:
        (test if held_out(sample.id, fraction, seed) else pool).append(sample)
    return pool, test
