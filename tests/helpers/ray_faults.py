"""Score a file with the Ray executor and kill -9 one actor's process after the first finished
block; print what was stored as JSON. Run inside a private network namespace.

Usage: python -m tests.helpers.ray_faults DATA STORE MODEL SEGMENT_PAIRS
"""

from __future__ import annotations

import json
import os
import signal
import sys

from delift_dvc.data.samples import load_samples
from delift_dvc.executors.ray import RayExecutor
from delift_dvc.kernels.driver import score_missing, store_samples
from delift_dvc.store import Store
from delift_dvc.utility.scorer import ScorerSpec


def main() -> None:
    data, store_root, model, segment_pairs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    samples = load_samples(data)
    by_id = {s.id: s for s in samples}
    ids = sorted(by_id)
    spec = ScorerSpec(model=model, dtype="float32", threads=1)
    scorer = spec.build()
    executor = RayExecutor(2, threads=1, name=lambda item: f"block {item[0].id}")
    killed = []
    original_run = executor.run

    def run_and_kill(make_worker, items, progress):
        for k, (item, result) in enumerate(original_run(make_worker, items, progress)):
            if k == 0:  # one block is done: kill an actor that is busy with the next one
                pid = executor.actor_pids()[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            yield item, result

    executor.run = run_and_kill
    try:
        with Store(store_root, write=True) as store:
            store_samples(store, by_id)
            counts = score_missing(store, scorer, by_id, ids, ids, ids, segment_pairs=segment_pairs,
                                   executor=executor, spec=spec)
    finally:
        executor.close()
    print(json.dumps({"killed": killed, "counts": counts.as_dict(), "fingerprint": scorer.fingerprint}))


if __name__ == "__main__":
    main()
