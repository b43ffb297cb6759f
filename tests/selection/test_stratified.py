"""Stratified selection against the definition: quotas by largest remainders, per stratum the
objective on the stratum's own min-max scaled block (a naive greedy written here), tempered
draws by their limits (temperature 0 is uniform, a huge one the order of singleton gains) and by
their exact probabilities (chi-square), the sequential draw against the definition's pick-by-pick
softmax of marginal gains."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from delift_dvc.errors import ArgumentError, InputError
from delift_dvc.selection.planning import plan_selection, run_plan
from delift_dvc.selection.spec import SelectionSpec
from delift_dvc.selection.sparse import SparseKernel
from delift_dvc.selection.stratified import (label_groups, normalise_label, resolve_temperature, select_stratified,
                                             singleton_gains, stratum_labels)


def value(K, chosen, objective="fl", extra=None, eta=1.0, nu=1.0) -> float:
    """The objective by its definition (objectives.py docstring), K rows targets."""
    best = K[:, list(chosen)].max(axis=1) if chosen else np.zeros(K.shape[0])
    if objective == "fl":
        return float(np.maximum(best, 0).sum())
    if objective == "flmi":
        return float(np.maximum(np.minimum(best, eta * extra.max(axis=1)), 0).sum())
    return float(np.maximum(best - nu * extra.max(axis=1), 0).sum())


def naive_greedy(K, n_pick, objective="fl", extra=None):
    """Pick the column of largest marginal gain, ties to the lowest index."""
    chosen: list[int] = []
    for _ in range(n_pick):
        gains = [value(K, chosen + [j], objective, extra) - value(K, chosen, objective, extra)
                 if j not in chosen else -np.inf for j in range(K.shape[1])]
        chosen.append(int(np.argmax(gains)))
    return chosen


def oracle(ids, K, strata, n_pick, objective="fl", extra=None):
    """stratum -> its picks (ids): quotas by largest remainders (ties to the name first in
    order), the naive greedy on the stratum's block scaled by its own min and max."""
    names = sorted(set(strata))
    sizes = {s: strata.count(s) for s in names}
    n = len(ids)
    floor = {s: sizes[s] * n_pick // n for s in names}
    rest = n_pick - sum(floor.values())
    for s in sorted(names, key=lambda s: (-(sizes[s] * n_pick - floor[s] * n), names.index(s)))[:rest]:
        floor[s] += 1
    out = {}
    for s in names:
        members = sorted((k for k in range(n) if strata[k] == s), key=lambda k: ids[k])
        block = K[np.ix_(members, members)]
        parts = [block] + ([extra[members]] if extra is not None else [])
        lo, hi = min(p.min() for p in parts), max(p.max() for p in parts)
        scaled = [(p - lo) / (hi - lo) for p in parts]
        picks = naive_greedy(scaled[0], floor[s], objective, scaled[1] if extra is not None else None)
        out[s] = [ids[members[j]] for j in picks]
    return out


def by_stratum(subset, ids, strata):
    where = dict(zip(ids, strata))
    out: dict[str, list[str]] = {}
    for i in subset.ids:
        out.setdefault(where[i], []).append(i)
    return out


@pytest.fixture
def pool():
    rng = np.random.default_rng(3)
    n = 14
    ids = [f"s{k:02d}" for k in rng.permutation(n)]  # ids not in index order
    strata = ["a"] * 7 + ["b"] * 4 + ["c"] * 3
    K = rng.normal(size=(n, n))
    return ids, K, strata


@pytest.mark.parametrize("n_pick", [1, 2, 3, 5, 9, 14])
def test_greedy_picks_are_the_per_stratum_greedy_on_its_own_scaled_block(pool, n_pick):
    ids, K, strata = pool
    got = select_stratified(ids, K, n_pick, strata)
    assert len(got.ids) == n_pick and len(set(got.ids)) == n_pick
    expected = {s: p for s, p in oracle(ids, K, strata, n_pick).items() if p}
    assert by_stratum(got, ids, strata) == expected


@pytest.mark.parametrize("objective", ["flmi", "flcg"])
def test_flmi_and_flcg_keep_every_extra_column(pool, objective):
    ids, K, strata = pool
    extra = np.random.default_rng(5).normal(size=(len(ids), 3))
    got = select_stratified(ids, K, 6, strata, objective=objective, extra=extra)
    expected = {s: p for s, p in oracle(ids, K, strata, 6, objective, extra).items() if p}
    assert by_stratum(got, ids, strata) == expected


def test_entries_across_strata_change_nothing(pool):
    ids, K, strata = pool
    first = select_stratified(ids, K, 6, strata)
    across = np.array([[a != b for b in strata] for a in strata])
    K2 = np.where(across, 100.0 * np.random.default_rng(9).normal(size=K.shape), K)
    again = select_stratified(ids, K2, 6, strata)
    assert again.ids == first.ids and again.gains == first.gains


def test_merge_is_round_robin_and_objective_is_the_sum_of_strata(pool):
    ids, K, strata = pool
    got = select_stratified(ids, K, 7, strata)  # quotas: a 3.5 -> 4 (tie with c's 1.5 to a), b 2, c 1
    picks = by_stratum(got, ids, strata)
    assert {s: len(p) for s, p in picks.items()} == {"a": 4, "b": 2, "c": 1}
    # round robin: the r-th pick of a stratum with quota q at (r + 1/2) / q, ties by stratum name
    slots = sorted(((r + 0.5) / len(p), s, i) for s, p in picks.items() for r, i in enumerate(p))
    assert got.ids == [i for _, _, i in slots]
    assert [dict(zip(ids, strata))[i] for i in got.ids] == ["a", "b", "a", "c", "a", "b", "a"]
    expected = sum(value_scaled(ids, K, strata, s, p) for s, p in by_stratum(got, ids, strata).items())
    assert got.objective == pytest.approx(expected)
    assert sum(got.gains) == pytest.approx(got.objective)


def value_scaled(ids, K, strata, s, picks):
    members = sorted((k for k in range(len(ids)) if strata[k] == s), key=lambda k: ids[k])
    block = K[np.ix_(members, members)]
    scaled = (block - block.min()) / (block.max() - block.min())
    pos = {ids[m]: j for j, m in enumerate(members)}
    return value(scaled, [pos[i] for i in picks])


def test_a_budget_below_the_number_of_strata_goes_to_the_largest_strata(pool):
    ids, K, strata = pool
    got = select_stratified(ids, K, 2, strata)
    assert sorted(Counter(dict(zip(ids, strata))[i] for i in got.ids)) == ["a", "b"]
    assert got.params["strata"] == 3 and got.params["strata_without_pick"] == 1


def test_sparse_kernel_with_missing_entries_gives_the_dense_subset(pool):
    ids, K, strata = pool
    present = np.random.default_rng(1).random(K.shape) < 0.6
    np.fill_diagonal(present, True)
    dense = np.where(present, K, np.nan)
    sparse = SparseKernel.from_dense(K, present)
    for temperature, draw in ((None, "independent"), (1.0, "independent"), (1.0, "sequential")):
        a = select_stratified(ids, dense, 6, strata, temperature=temperature, seed=4, draw=draw)
        b = select_stratified(ids, sparse, 6, strata, temperature=temperature, seed=4, draw=draw)
        assert a.ids == b.ids and a.gains == pytest.approx(b.gains)


def test_singleton_gains_are_the_objective_of_each_column_alone():
    rng = np.random.default_rng(2)
    K, Q = rng.random((6, 5)), rng.random((6, 2))
    for objective, kw, extra in (("fl", {}, None), ("flmi", {"query_kernel": Q, "eta": 0.7}, Q),
                                 ("flcg", {"private_kernel": Q, "nu": 0.8}, Q)):
        got = singleton_gains(K, objective, **kw)
        eta, nu = kw.get("eta", 1.0), kw.get("nu", 1.0)
        want = [value(K, [j], objective, extra, eta, nu) - value(K, [], objective, extra, eta, nu)
                for j in range(5)]
        assert got == pytest.approx(want)


def test_temperature_zero_draws_uniformly_inside_each_stratum():
    n = 12
    ids = [f"s{k:02d}" for k in range(n)]
    strata = ["a"] * 8 + ["b"] * 4
    K = np.eye(n) + np.arange(n)[None, :] * 0.1  # a strong preference the draw must ignore
    counts = Counter()
    for seed in range(600):
        got = select_stratified(ids, K, 3, strata, temperature=0.0, seed=seed)
        assert Counter(s for i, s in zip(ids, strata) if i in got.ids) == {"a": 2, "b": 1}
        counts.update(got.ids)
    # each "a" member is drawn 2/8 of the time, each "b" member 1/4: 150 of 600 each
    for i in ids:
        assert 100 < counts[i] < 200, (i, counts[i])


def test_a_tempered_first_draw_follows_the_softmax_of_the_standardised_singleton_gains():
    """P(first pick = j) = exp(t z_j) / sum_k exp(t z_k), z the standard scores of the columns'
    facility-location values alone on the min-max scaled kernel (the definition, by hand);
    checked by a chi-square test over 4,000 seeded draws of one pick."""
    rng = np.random.default_rng(11)
    n, temperature, draws = 6, 1.5, 4000
    ids = [f"s{k}" for k in range(n)]
    K = rng.random((n, n))
    scaled = (K - K.min()) / (K.max() - K.min())
    alone = scaled.sum(axis=0)  # f({j}) of facility location: sum_i K[i, j]
    z = (alone - alone.mean()) / alone.std()
    p = np.exp(temperature * z) / np.exp(temperature * z).sum()
    counts = Counter(select_stratified(ids, K, 1, ["x"] * n, temperature=temperature, seed=seed).ids[0]
                     for seed in range(draws))
    observed = np.array([counts[i] for i in ids])
    chi2 = float(((observed - draws * p) ** 2 / (draws * p)).sum())
    assert chi2 < 20.5, (observed, (draws * p).round(1))  # p = 0.001 at 5 degrees of freedom


def test_a_huge_temperature_picks_in_the_order_of_singleton_gains():
    rng = np.random.default_rng(7)
    n = 10
    ids = [f"s{k:02d}" for k in range(n)]
    K = rng.random((n, n))
    got = select_stratified(ids, K, 4, ["x"] * n, temperature=1e9, seed=0)
    scaled = (K - K.min()) / (K.max() - K.min())
    order = np.argsort(-scaled.sum(axis=0), kind="stable")[:4]
    assert got.ids == [ids[j] for j in order]
    assert got.objective == pytest.approx(value(scaled, list(order)))


def test_the_same_seed_gives_the_same_draw_and_seeds_differ():
    rng = np.random.default_rng(8)
    ids = [f"s{k:02d}" for k in range(20)]
    K = rng.random((20, 20))
    draws = {tuple(select_stratified(ids, K, 5, ["x"] * 20, temperature=1.0, seed=s).ids) for s in range(5)}
    assert len(draws) > 1
    assert select_stratified(ids, K, 5, ["x"] * 20, temperature=1.0, seed=3).ids == \
        select_stratified(ids, K, 5, ["x"] * 20, temperature=1.0, seed=3).ids


def test_labels_and_label_formats():
    assert normalise_label("  Positive.<|endoftext|>") == "positive"
    groups = ["sent"] * 6 + ["free"] * 4 + ["tiny"] * 2
    responses = ["yes", "No", "yes.", "no", "Yes", "no"] + ["a b", "c d", "e f", "a b"] + ["x", "y"]
    assert label_groups(groups, responses) == {"sent"}  # tiny: 2 labels in 2 samples recur never
    labels = stratum_labels(groups, responses, "group_label")
    assert labels[:6] == ["sent=yes", "sent=no", "sent=yes", "sent=no", "sent=yes", "sent=no"]
    assert labels[6:] == ["free"] * 4 + ["tiny"] * 2
    assert stratum_labels(groups, responses, "group") == groups


def test_a_label_format_with_many_labels_is_free_text():
    groups = ["g"] * 40
    responses = [f"label {k % 17}" for k in range(40)]  # 17 distinct labels > 16
    assert label_groups(groups, responses) == set()


def test_run_plan_stratifies_by_the_strata_it_gets():
    ids = [f"s{k}" for k in range(8)]
    K = np.random.default_rng(0).random((8, 8))
    plan = plan_selection(ids, 4)
    strata = ["a"] * 4 + ["b"] * 4
    got = run_plan(plan, SelectionSpec(strata="group"), K, strata=strata)
    want = select_stratified(plan.ground, K, 4, strata)
    assert got.ids == want.ids
    with pytest.raises(ValueError, match="stratum of every ground sample"):
        run_plan(plan, SelectionSpec(strata="group"), K)


def test_a_sequential_draw_of_two_follows_the_pick_by_pick_softmax_of_marginal_gains():
    """P(picks = (a, b)) = s1(a) * s2(b | a), s_r the softmax of t * z(marginal gain) over the
    columns left, the gains f(S + j) - f(S) of facility location on the min-max scaled kernel (the
    definition, by hand); chi-square over 6,000 seeded draws of two picks (30 ordered pairs)."""
    rng = np.random.default_rng(5)
    n, temperature, draws = 6, 1.5, 6000
    ids = [f"s{k}" for k in range(n)]
    K = rng.random((n, n))
    scaled = (K - K.min()) / (K.max() - K.min())

    def softmax_left(chosen):
        left = [j for j in range(n) if j not in chosen]
        gain = np.array([value(scaled, chosen + [j]) - value(scaled, chosen) for j in left])
        z = (gain - gain.mean()) / gain.std()
        w = np.exp(temperature * z)
        return dict(zip(left, w / w.sum()))

    first = softmax_left([])
    p = {(a, b): first[a] * q for a in range(n) for b, q in softmax_left([a]).items()}
    counts = Counter(tuple(ids.index(i) for i in select_stratified(ids, K, 2, ["x"] * n, temperature=temperature,
                                                                    seed=seed, draw="sequential").ids)
                     for seed in range(draws))
    assert set(counts) <= set(p)
    chi2 = sum((counts[k] - draws * q) ** 2 / (draws * q) for k, q in p.items())
    assert chi2 < 58.3, chi2  # p = 0.001 at 29 degrees of freedom


@pytest.mark.parametrize("objective", ["fl", "flmi", "flcg"])
def test_a_sequential_draw_at_a_huge_temperature_is_the_greedy(pool, objective):
    ids, K, strata = pool
    extra = np.random.default_rng(9).normal(size=(len(ids), 3)) if objective != "fl" else None
    got = select_stratified(ids, K, 9, strata, objective=objective, extra=extra, temperature=1e9, seed=0,
                            draw="sequential")
    greedy = select_stratified(ids, K, 9, strata, objective=objective, extra=extra)

    def adding(subset):  # candidates that add nothing tie, and a draw breaks ties at random
        return [i for i, g in zip(subset.ids, subset.gains) if g > 1e-12]

    assert adding(got) == adding(greedy)
    # gains only shrink, so the picks that add something are each stratum's first ones: those of
    # the naive greedy written from the definition
    where = dict(zip(ids, strata))
    positive: dict[str, list[str]] = {}
    for i in adding(got):
        positive.setdefault(where[i], []).append(i)
    want = oracle(ids, K, strata, 9, objective, extra)
    assert positive == {s: want[s][:len(picks)] for s, picks in positive.items()}
    assert got.objective == pytest.approx(greedy.objective) and got.gains == pytest.approx(greedy.gains)


def test_a_sequential_draw_does_not_take_the_twin_of_a_pick():
    """Columns 0 and 1 are the same candidate twice and cover half the targets best: drawn by
    their gains alone both come first; drawn pick by pick the twin adds nothing once one is in."""
    rng = np.random.default_rng(4)
    n = 10
    ids = [f"s{k}" for k in range(n)]
    K = rng.random((n, n)) * 0.5
    K[:, 1] = K[:, 0] = np.r_[np.full(5, 1.0), np.full(5, 0.45)]
    for seed in range(20):
        independent = select_stratified(ids, K, 2, ["x"] * n, temperature=50.0, seed=seed)
        sequential = select_stratified(ids, K, 2, ["x"] * n, temperature=50.0, seed=seed, draw="sequential")
        assert set(independent.ids) == {"s0", "s1"}
        assert len({"s0", "s1"} & set(sequential.ids)) == 1
        assert sequential.params["draw"] == "sequential" and "draw" not in independent.params


def test_a_sequential_draw_at_temperature_zero_is_uniform_inside_each_stratum():
    n = 12
    ids = [f"s{k:02d}" for k in range(n)]
    strata = ["a"] * 8 + ["b"] * 4
    K = np.eye(n) + np.arange(n)[None, :] * 0.1
    counts = Counter()
    for seed in range(600):
        counts.update(select_stratified(ids, K, 3, strata, temperature=0.0, seed=seed, draw="sequential").ids)
    for i in ids:
        assert 100 < counts[i] < 200, (i, counts[i])


def test_bad_draw_names_the_argument_and_the_key(tmp_path):
    with pytest.raises(ArgumentError, match="draw"):
        select_stratified(["a", "b"], np.eye(2), 1, ["x", "x"], temperature=1.0, draw="greedy")
    from delift_dvc.config import load_params

    path = tmp_path / "params.yaml"
    for text, message in (("selection: {draw: greedy}\n", "selection.draw 'greedy': expected one of"),
                          ("selection: {draw: sequential, method: random}\n",
                           "selection.draw 'sequential': only used by selection.method delift or delift_se, not "
                           "random (set it to independent)"),
                          ("selection: {draw: sequential, temperature: null}\n",
                           "selection.draw 'sequential': only used by a tempered draw"),
                          ("selection: {draw: sequential, strata: none}\n",
                           "selection.temperature 'auto' with selection.strata none picks greedily")):
        path.write_text(text)
        with pytest.raises(InputError, match=message.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
            load_params(path)
    for text in ("selection: {draw: sequential}\n", "selection: {draw: sequential, strata: none, temperature: 1}\n",
                 "selection: {method: random, draw: independent}\n"):
        path.write_text(text)
        load_params(path)


def test_bad_temperature_names_the_argument_and_the_key(tmp_path):
    with pytest.raises(ArgumentError, match="temperature"):
        select_stratified(["a", "b"], np.eye(2), 1, ["x", "x"], temperature=-1.0)
    from delift_dvc.config import load_params

    path = tmp_path / "params.yaml"
    for text, message in (("selection: {temperature: -1}\n",
                           "selection.temperature -1: expected auto, null or a number >= 0"),
                          ("selection: {temperature: warm}\n", "selection.temperature 'warm': expected auto"),
                          ("selection: {strata: label}\n", "selection.strata"),
                          ("selection: {strata: group, method: random}\n", "only used by selection.method delift"),
                          ("selection: {temperature: 0.5, method: stratified_random}\n",
                           "selection.temperature 0.5: only used by selection.method delift"),
                          ("selection: {strata: group, balance_clusters: 12}\n", "already allocates by strata"),
                          # the default strata (group_label) with a cluster balance: say how to turn strata off
                          ("selection: {balance_clusters: 12}\n",
                           "selection.balance_clusters with selection.strata group_label: a stratified selection "
                           "already allocates by strata (set selection.strata: none"),
                          ("selection: {strata: none, temperature: 1, embedding_coverage: 0.5}\n",
                           "set selection.temperature: null to use selection.embedding_coverage")):
        path.write_text(text)
        with pytest.raises(InputError, match=message.replace(".", r"\.").replace("(", r"\(")):
            load_params(path)
    # the defaults (strata group_label, temperature auto) are quiet for the methods that read no
    # kernel, and strata none lets the cluster balance and the coverage term run
    for text in ("selection: {method: random}\n", "selection: {method: stratified_random}\n",
                 "selection: {method: full, strata: none, temperature: null}\n",
                 "selection: {strata: none, balance_clusters: 12}\n",
                 "selection: {strata: none, embedding_coverage: 0.5}\n"):
        path.write_text(text)
        load_params(path)


def test_single_group_clusters_average_at_least_eight_samples():
    from delift_dvc.selection.stratified import cluster_count

    assert [cluster_count(n, 16) for n in (0, 7, 15, 16, 46, 127, 128, 10_000)] == [1, 1, 1, 2, 5, 15, 16, 16]
    assert cluster_count(1000, 3) == 3


def test_auto_temperature_is_the_draw_with_strata_and_the_greedy_without(tmp_path):
    from delift_dvc.config import load_params
    from delift_dvc.stages.subset import selection_spec

    assert resolve_temperature("auto", "group_label") == resolve_temperature("auto", "group") == 1.0
    assert resolve_temperature("auto", "none") is None
    assert resolve_temperature(None, "group") is None and resolve_temperature(0, "none") == 0.0
    with pytest.raises(ArgumentError, match="temperature"):
        resolve_temperature(-0.5, "group")
    # params.yaml without a selection section: the stratified tempered draw; strata none alone is
    # the paper's plain DELIFT (no stratum, the greedy)
    (tmp_path / "params.yaml").write_text("data: {train: data/raw}\n")
    default = selection_spec(load_params(tmp_path / "params.yaml").selection)
    assert (default.strata, default.temperature, default.stratifies) == ("group_label", 1.0, True)
    plain = SelectionSpec(strata="none", temperature=resolve_temperature("auto", "none"))
    assert not plain.stratifies


def test_every_stratum_of_a_small_pool_by_brute_force_quotas():
    # all budgets on a 3-stratum pool: the quotas sum to the budget, never exceed a stratum
    ids = [f"s{k}" for k in range(9)]
    strata = ["a", "a", "a", "a", "b", "b", "b", "c", "c"]
    K = np.random.default_rng(4).random((9, 9))
    for n_pick in range(1, 10):
        got = select_stratified(ids, K, n_pick, strata)
        per = Counter(dict(zip(ids, strata))[i] for i in got.ids)
        share = {"a": 4 * n_pick / 9, "b": 3 * n_pick / 9, "c": 2 * n_pick / 9}
        assert sum(per.values()) == n_pick
        for s, exact in share.items():
            assert int(exact) <= per[s] <= int(exact) + 1


@pytest.mark.parametrize("temperature", [None, 1.0])
def test_a_per_target_calibration_cannot_change_a_dense_stratified_selection(temperature):
    """Subtracting from each target's row any constant (e.g. the mean gain of the examples of
    its stratum, which removes format and label priming) changes no pick inside strata on a
    dense kernel: each stratum's block is min-max scaled and facility location's value moves by
    the same amount for every candidate. So that calibration is no candidate for the default."""
    rng = np.random.default_rng(3)
    n = 30
    ids = [f"s{k:02d}" for k in range(n)]
    strata = ["a"] * 12 + ["b"] * 10 + ["c"] * 8
    K = rng.normal(size=(n, n))
    shift = np.zeros(n)
    for name in set(strata):
        rows = np.flatnonzero(np.array(strata) == name)
        shift[rows] = K[np.ix_(rows, rows)].mean(axis=1) + rng.normal(size=len(rows))
    plain = select_stratified(ids, K, 9, strata, temperature=temperature, seed=4)
    calibrated = select_stratified(ids, K - shift[:, None], 9, strata, temperature=temperature, seed=4)
    assert calibrated.ids == plain.ids
