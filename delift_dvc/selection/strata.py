"""Stratified random: the budget split across groups in proportion to their size (largest
remainders, ties to the group whose name sorts first), a seeded uniform draw inside each group.

The baseline every selection must beat on mixed data: it allocates like the data. With one group
it is exactly the uniform random baseline (same ids, same seed, same subset). With allocation
"balanced" the budget is split as equally as the group sizes allow (balanced random: the
baseline of a selection that balances its groups).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from delift_dvc.selection.balance import allocate
from delift_dvc.selection.budget import resolve_budget
from delift_dvc.selection.methods import Subset

__all__ = ["stratified_random"]


def stratified_random(ids: Sequence[str], groups: Sequence[str], budget: int | float, seed: int = 0,
                      allocation: str = "proportional") -> Subset:
    """A seeded stratified random subset of `ids` (groups[k]: the group of ids[k]), group by
    group in name order, the budget split by `allocation` (balance.ALLOCATIONS); the same ids,
    groups and seed give the same subset on every machine."""
    if len(groups) != len(ids):
        raise ValueError(f"groups has {len(groups)} labels for {len(ids)} ids")
    pool = sorted(zip(ids, groups))
    members: dict[str, list[str]] = {}
    for i, g in pool:  # ids in sorted order inside each group
        members.setdefault(g, []).append(i)
    names = sorted(members)
    label = {name: k for k, name in enumerate(names)}
    labels = np.array([label[g] for _, g in pool], dtype=np.int64)
    k = resolve_budget(budget, len(pool)) if pool else 0
    quota = allocate(labels, k, allocation) if pool else np.zeros(0, np.int64)
    rng = random.Random(seed)
    picked: list[str] = []
    for name in names:
        picked += rng.sample(members[name], int(quota[label[name]]))
    params = {"budget": budget, "seed": seed, "groups": len(names)}
    if allocation != "proportional":  # the record of a proportional draw stays as it was before
        params["allocation"] = allocation
    return Subset(picked, [0.0] * len(picked), 0.0, "stratified_random", "none", params)
