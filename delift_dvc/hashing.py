"""The identity of a set of sample ids, shared by the data versions and the store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["members_hash"]


def members_hash(ids: Iterable[str]) -> str:
    """First 16 hex digits of sha256 over the distinct ids, sorted and joined by newlines."""
    return hashlib.sha256("\n".join(sorted(set(ids))).encode()).hexdigest()[:16]
