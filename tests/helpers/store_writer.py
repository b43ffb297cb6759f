"""Fill a store with fake pair values over an n x n id grid, one block at a time.

Usage: python store_writer.py ROOT N BLOCK SLEEP_SECONDS

Each round asks the store which pairs are missing, writes the first BLOCK of them with
deterministic fake values and sleeps; it stops when nothing is missing. Used by
tests/test_store.py to kill a writer mid-run and resume it.
"""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np

from delift_dvc.store import Store

SCORER = hashlib.sha256(b"fake scorer").hexdigest()


def grid_ids(n: int) -> list[str]:
    """n deterministic sample ids."""
    return [hashlib.sha256(f"sample {i}".encode()).hexdigest()[:16] for i in range(n)]


def fake_d(target: str, example: str) -> float:
    """A deterministic value in [0, 1] for the pair."""
    return int(hashlib.sha256(f"{target}:{example}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def main(root: str, n: int, block: int, pause: float) -> None:
    ids = grid_ids(n)
    with Store(root, write=True) as store:
        while True:
            ti, ei = store.missing_pairs(SCORER, ids, ids)
            if len(ti) == 0:
                break
            targets = [ids[i] for i in ti[:block]]
            examples = [ids[j] for j in ei[:block]]
            d = np.array([fake_d(t, e) for t, e in zip(targets, examples)])
            store.write_pairs(SCORER, targets, examples, d)
            time.sleep(pause)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
