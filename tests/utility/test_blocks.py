"""The planner of blocks of scoring work: pure, deterministic, resumable."""

from __future__ import annotations

import numpy as np

from delift_dvc.utility.blocks import ScoreWorker, block_texts, plan_blocks, score_block

FP = "f" * 64
IDS = [f"{k:016x}" for k in range(7)]


def grid(n_t, n_e):
    return np.repeat(np.arange(n_t), n_e), np.tile(np.arange(n_e), n_t)


def test_blocks_cover_what_is_missing_in_example_order():
    t, e = grid(7, 7)
    missing = np.ones(49, bool)
    plan = plan_blocks(FP, IDS, np.ones(7, bool), IDS, IDS, (t, e), missing, 10)
    assert [b.kind for b in plan.blocks] == ["baselines"] + ["pairs"] * 5
    assert all(len(b) <= 10 for b in plan.blocks) and sum(len(b) for b in plan.blocks) == 7 + 49
    pairs = [(tt, ee) for b in plan.blocks if b.kind == "pairs" for tt, ee in zip(b.targets, b.examples)]
    assert pairs == sorted(pairs, key=lambda p: (p[1], p[0]))  # by example, then target
    assert len({b.id for b in plan.blocks}) == len(plan.blocks)


def test_same_plan_same_blocks_and_stored_blocks_are_skipped():
    t, e = grid(7, 7)
    full = plan_blocks(FP, IDS, np.ones(7, bool), IDS, IDS, (t, e), np.ones(49, bool), 10)
    again = plan_blocks(FP, IDS, np.ones(7, bool), IDS, IDS, (t, e), np.ones(49, bool), 10)
    assert full.blocks == again.blocks
    # the first two pair blocks were written: a rerun plans exactly the others, with the same ids
    written = {(tt, ee) for b in full.blocks[1:3] for tt, ee in zip(b.targets, b.examples)}
    missing = np.array([(IDS[a], IDS[b]) not in written for a, b in zip(t, e)])
    resumed = plan_blocks(FP, IDS, np.zeros(7, bool), IDS, IDS, (t, e), missing, 10)
    assert [b.id for b in resumed.blocks] == [b.id for b in full.blocks[3:]]
    assert resumed.missing_pairs == 49 - len(written) and resumed.wanted_pairs == 49
    other = plan_blocks("e" * 64, IDS, np.ones(7, bool), IDS, IDS, (t, e), np.ones(49, bool), 10)
    assert {b.id for b in other.blocks}.isdisjoint(b.id for b in full.blocks)  # keyed by scorer


def test_a_partly_stored_block_scores_only_its_missing_values():
    t, e = grid(2, 3)
    missing = np.array([True, False, True, True, True, False])
    plan = plan_blocks(FP, IDS[:2], np.zeros(2, bool), IDS[:2], IDS[:3], (t, e), missing, 100)
    (block,) = plan.blocks
    assert block.wanted == 6 and len(block) == 4


class FakeScorer:
    def score_pairs(self, targets, examples, pairs, progress=None):
        values = [len(targets[i].prompt) / 100 + (0 if j is None else len(examples[j].response) / 1000)
                  for i, j in pairs]
        if progress:
            progress(len(pairs))
        return np.array(values)


def test_worker_step_scores_a_block_from_its_texts():
    from types import SimpleNamespace

    samples = {i: SimpleNamespace(prompt="p" * (k + 1), response="r" * (k + 2)) for k, i in enumerate(IDS)}
    t, e = grid(3, 2)
    plan = plan_blocks(FP, IDS[:3], np.ones(3, bool), IDS[:3], IDS[:2], (t, e), np.ones(6, bool), 100)
    done = []
    worker = ScoreWorker(scorer=FakeScorer())
    for block in plan.blocks:
        values = worker((block, block_texts(block, samples)), done.append)
        expected = [len(samples[a].prompt) / 100 + (0 if block.examples is None else len(samples[b].response) / 1000)
                    for a, b in zip(block.targets, block.examples or block.targets)]
        np.testing.assert_allclose(values, expected)
        assert np.array_equal(values, score_block(FakeScorer(), block, block_texts(block, samples)))
    assert sum(done) == 3 + 6
