"""A selection that allocates like the data and chooses by utility inside: strata.

The ground set is cut into strata (a sample's group, or its group and answer label for label
formats); the budget is split across the strata in proportion to their size (largest
remainders, ties to the stratum whose name sorts first, :func:`balance.quotas`), or, with
``allocation`` "balanced", first across the groups as equally as their sizes allow
(:func:`balance.balanced_quotas`) and then inside each group across its strata in proportion
to their size (so a label format keeps its labels' proportions); inside each
stratum the objective (fl, flmi or flcg) runs on that stratum's own block of the kernel: the
columns of other strata are dropped, and the block is min-max scaled on its own, so another
stratum's values set no scale. FLMI keeps every query column, FLCG every private column.

Inside a stratum the picks are either the greedy's (``temperature`` None) or a tempered draw
without replacement: Gumbel top-k on ``temperature * z(singleton gain)``, seeded, where a
candidate's singleton gain is the objective of it alone (the greedy's first-step gain) and z its
standard score within the stratum (``draw`` "independent"). With ``draw`` "sequential" each pick
is drawn in turn by its marginal gain given the picks so far (z over the candidates left, a fresh
Gumbel key per step), so a candidate that covers what a pick already covers, a near-duplicate
above all, loses its weight once its twin is in. Temperature 0 is a uniform draw inside each
stratum (stratified random at the strata's granularity) either way; larger values approach the
greedy's first pick order (independent) or the greedy itself (sequential). The strata's picks are
merged round-robin: by (rank + 1/2) / quota, then stratum name.

Pure: ids, arrays and labels in, a Subset out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from delift_dvc.errors import ArgumentError
from delift_dvc.selection.balance import allocate, quotas
from delift_dvc.selection.budget import resolve_budget
from delift_dvc.selection.greedy import evaluate, maximize
from delift_dvc.selection.methods import Subset, scaled_blocks
from delift_dvc.selection.objectives import OBJECTIVES, dense_blocks
from delift_dvc.selection.sparse import SparseKernel, prepare_sparse

__all__ = ["STRATA", "MAX_LABELS", "normalise_label", "label_groups", "stratum_labels", "select_stratified",
           "singleton_gains", "check_temperature", "AUTO_TEMPERATURE", "DRAW_TEMPERATURE", "resolve_temperature",
           "MEAN_CLUSTER_SIZE", "cluster_count", "DRAWS", "check_draw", "stratum_quotas"]

STRATA = ("none", "group", "group_label")  # selection.strata
DRAWS = ("independent", "sequential")  # selection.draw: by singleton gains, or by marginal gains pick by pick
MAX_LABELS = 16  # a group is a label format when it has at most this many distinct normalised responses
END_MARKERS = ("<|endoftext|>", "</s>", "<|im_end|>", "<|eot_id|>")


def normalise_label(response: str) -> str:
    """A response as an answer label: without a trailing end marker and outer whitespace, lower
    case, without a final "."."""
    text = response.strip()
    for marker in END_MARKERS:
        text = text.removesuffix(marker)
    return text.strip().lower().rstrip(".").strip()


def label_groups(groups: Sequence[str], responses: Sequence[str]) -> set[str]:
    """The groups that are label formats: at most MAX_LABELS distinct normalised responses, and
    at most half as many as the group has samples (so a label recurs)."""
    labels: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for g, r in zip(groups, responses, strict=True):
        labels.setdefault(g, set()).add(normalise_label(r))
        sizes[g] = sizes.get(g, 0) + 1
    return {g for g, found in labels.items() if len(found) <= MAX_LABELS and 2 * len(found) <= sizes[g]}


def stratum_labels(groups: Sequence[str], responses: Sequence[str], strata: str) -> list[str]:
    """The stratum of each sample (in the given order): its group (`group`), or for a sample of a
    label-format group its group and normalised response, "group=label" (`group_label`)."""
    if strata not in STRATA or strata == "none":
        raise ArgumentError("strata", f"'{strata}': expected group or group_label")
    if strata == "group":
        return list(groups)
    labelled = label_groups(groups, responses)
    return [f"{g}={normalise_label(r)}" if g in labelled else g for g, r in zip(groups, responses, strict=True)]


MEAN_CLUSTER_SIZE = 8  # single-group strata: at most n // this many clusters (a pool under 16 is one stratum)
AUTO_TEMPERATURE = "auto"  # selection.temperature's default: DRAW_TEMPERATURE with strata, the greedy without
DRAW_TEMPERATURE = 1.0  # the tempered draw measured best against stratified random (benchmarks/RESULTS.md, P0)


def cluster_count(n: int, clusters: int) -> int:
    """The k-means clusters that stand in for groups in a single-group ground set of n samples:
    selection.strata_clusters, but at most n // MEAN_CLUSTER_SIZE (at least 1), so that a small
    pool is not cut into strata of one or two samples, each of which would scale to nothing."""
    return max(1, min(int(clusters), n // MEAN_CLUSTER_SIZE))


def resolve_temperature(temperature: float | str | None, strata: str) -> float | None:
    """selection.temperature as the selection reads it: "auto" is DRAW_TEMPERATURE when `strata`
    is not "none" and None (the greedy: the paper's plain DELIFT) when it is."""
    if temperature == AUTO_TEMPERATURE:
        return None if strata == "none" else DRAW_TEMPERATURE
    return check_temperature(temperature)


def check_temperature(temperature: float | None) -> float | None:
    """`temperature` as a float >= 0, or None (the greedy); ArgumentError otherwise."""
    if temperature is None:
        return None
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature < 0:
        raise ArgumentError("temperature", f"{temperature!r}: expected null or a number >= 0")
    return float(temperature)


def check_draw(draw: str) -> str:
    """`draw` if it is one of DRAWS; ArgumentError otherwise."""
    if draw not in DRAWS:
        raise ArgumentError("draw", f"{draw!r}: expected one of {', '.join(DRAWS)}")
    return draw


def _gain_terms(kernel: np.ndarray | SparseKernel, objective: str, query_kernel, eta: float, private_kernel,
                nu: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """(v, rows, cols, base) of the greedy's marginal gains: v = min(K, cap) (dense [n_t, n_c], or
    the sparse entries with their rows and cols), base [n_t] the starting best per target."""
    if isinstance(kernel, SparseKernel):
        base, cap = prepare_sparse(kernel, objective, query_kernel, eta, private_kernel, nu)
        rows = kernel.rows()
        v = kernel.values if cap is None else np.minimum(kernel.values, cap[rows])
        return v, rows, kernel.indices, base
    k, base, cap = dense_blocks(kernel, objective, query_kernel, eta, private_kernel, nu)
    v = k.astype(np.float64) if cap is None else np.minimum(k, cap[:, None])
    return v, None, None, base


def _column_gains(v: np.ndarray, rows: np.ndarray | None, cols: np.ndarray | None, best: np.ndarray,
                  n_cols: int) -> np.ndarray:
    """Marginal gain of every candidate given the best value so far per target, float64 [n_cols]:
    sum over targets i of max(v[i, j] - best[i], 0) (a missing sparse entry adds 0)."""
    if rows is None:
        return np.maximum(v - best[:, None], 0.0).sum(axis=0)
    terms = np.maximum(v - best[rows], 0.0)
    return np.bincount(cols, weights=terms, minlength=n_cols).astype(np.float64)


def singleton_gains(kernel: np.ndarray | SparseKernel, objective: str = "fl", *, query_kernel=None, eta: float = 1.0,
                    private_kernel=None, nu: float = 1.0) -> np.ndarray:
    """f({j}) for every candidate j, float64 [n_candidates]: sum over targets i of
    max(min(K[i, j], cap_i) - base_i, 0) (cap = eta * max_q Kq[i, q] for flmi, base = nu *
    max_p Kp[i, p] for flcg); a missing sparse entry counts as 0, as in the greedy."""
    v, rows, cols, base = _gain_terms(kernel, objective, query_kernel, eta, private_kernel, nu)
    return _column_gains(v, rows, cols, base, kernel.shape[1])


def _z(x: np.ndarray) -> np.ndarray:
    """Standard scores of x (all 0 when x is constant)."""
    sd = float(x.std())
    return np.zeros_like(x) if not sd > 0 else (x - x.mean()) / sd


def _block(kernel, rows: np.ndarray, cols: np.ndarray):
    if isinstance(kernel, SparseKernel):
        return kernel.take(rows, cols)
    return kernel[np.ix_(rows, cols)]


def select_stratified(ids: Sequence[str], kernel: np.ndarray | SparseKernel, budget: int | float,
                      strata: Sequence[str], *, objective: str = "fl", extra=None, eta: float = 1.0, nu: float = 1.0,
                      scaling: str = "joint", temperature: float | None = None, seed: int = 0,
                      stop_at_zero_gain: bool = False, method: str = "delift", draw: str = "independent",
                      allocation: str = "proportional", groups: Sequence[str] | None = None) -> Subset:
    """A stratified subset of `ids` (the ground set; kernel [n, n], rows targets, columns
    candidates, both in the order of `ids`; raw values, NaN or a missing sparse entry unscored);
    extra [n, |Q| or |P|]: the query (flmi) or private (flcg) block. strata[k]: the stratum of
    ids[k]; groups[k] its group (read by a balanced allocation; every stratum lies in one group).
    Quotas per stratum by `allocation` (a stratum may get none when the budget is smaller than
    the number of strata); inside each, the greedy or the tempered draw (see the module
    docstring). objective = the sum of the strata's objectives, each on its own scaled block."""
    if objective not in OBJECTIVES:
        raise ArgumentError("objective", f"'{objective}': expected one of {', '.join(OBJECTIVES)}")
    temperature = check_temperature(temperature)
    draw = check_draw(draw)
    n = len(ids)
    if len(strata) != n:
        raise ValueError(f"strata has {len(strata)} labels for {n} ids")
    if kernel.shape != (n, n):
        raise ValueError(f"kernel shape {kernel.shape} does not match {n} ids")
    if objective in ("flmi", "flcg") and extra is None:
        raise ValueError(f"{objective} needs its extra block (query or private kernel)")
    n_pick = resolve_budget(budget, n) if n else 0
    names = sorted(set(strata))
    index = {name: s for s, name in enumerate(names)}
    labels = np.array([index[s] for s in strata], dtype=np.int64)
    quota = stratum_quotas(labels, n_pick, allocation, groups) if n else np.zeros(0, np.int64)
    ranked: list[tuple[float, int, str, float]] = []  # (round-robin key, stratum, id, gain)
    total = 0.0
    for s, name in enumerate(names):
        if quota[s] == 0:
            continue
        members = np.flatnonzero(labels == s)
        members = members[np.argsort(np.asarray([ids[k] for k in members], dtype=object), kind="stable")]
        member_ids = [ids[k] for k in members]
        sub = _block(kernel, members, members)
        sub_extra = None
        if objective != "fl":
            sub_extra = _block(extra, members, np.arange(extra.shape[1]))
        blocks = scaled_blocks(sub, sub_extra, np.arange(len(members)), scaling)
        kw = {"query_kernel": blocks[1]} if objective == "flmi" else (
            {"private_kernel": blocks[1]} if objective == "flcg" else {})
        if temperature is None:
            result = maximize(blocks[0], int(quota[s]), objective, eta=eta, nu=nu,
                              stop_at_zero_gain=stop_at_zero_gain, **kw)
            picks, gains, value = result.indices.tolist(), result.gains.tolist(), float(result.objective)
        else:
            drawer = _tempered if draw == "independent" else _sequential
            picks, gains, value = drawer(blocks[0], int(quota[s]), objective, kw, eta, nu, temperature,
                                         (seed, s), stop_at_zero_gain)
        total += value
        q = int(quota[s])
        ranked += [((r + 0.5) / q, s, member_ids[j], g) for r, (j, g) in enumerate(zip(picks, gains))]
    ranked.sort(key=lambda t: (t[0], t[1]))
    params = {"budget": budget, "scaling": scaling, "stop_at_zero_gain": stop_at_zero_gain,
              "strata": len(names), "strata_without_pick": int(np.count_nonzero(quota == 0)) if n else 0,
              "temperature": temperature}
    if allocation != "proportional":  # the record of a proportional selection stays as it was before
        params["allocation"] = allocation
    if temperature is not None:
        params["seed"] = seed
        if draw != "independent":  # the record of an independent draw stays as it was before draws had a name
            params["draw"] = draw
    params.update({"flmi": {"eta": eta}, "flcg": {"nu": nu}}.get(objective, {}))
    return Subset([t[2] for t in ranked], [float(t[3]) for t in ranked], total, method, objective, params)


def stratum_quotas(labels: np.ndarray, n_pick: int, allocation: str = "proportional",
                   groups: Sequence[str] | None = None) -> np.ndarray:
    """Picks per stratum, int64 [n_strata] (labels[k]: the stratum number of sample k): by
    largest remainders over the strata (`proportional`), or (`balanced`) as equally as possible
    across the groups (groups[k]: the group of sample k, one per stratum), then in proportion
    to size across each group's strata."""
    if allocation == "proportional":
        return quotas(labels, n_pick)
    if groups is None or len(groups) != len(labels):
        raise ValueError(f"a {allocation} allocation needs the group of every sample")
    number = {g: k for k, g in enumerate(sorted(set(groups)))}
    group = np.array([number[g] for g in groups], dtype=np.int64)
    of_stratum = {}
    for s, g in zip(labels.tolist(), group.tolist()):
        if of_stratum.setdefault(s, g) != g:
            raise ValueError("a stratum spans more than one group")
    quota = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    for g, q in enumerate(allocate(group, n_pick, allocation).tolist()):
        inside = np.flatnonzero(group == g)
        local, numbered = np.unique(labels[inside], return_inverse=True)
        quota[local] = quotas(numbered, q)
    return quota


def _tempered(kernel, n_pick: int, objective: str, kw: dict, eta: float, nu: float, temperature: float,
              seed: tuple[int, int], stop_at_zero_gain: bool) -> tuple[list[int], list[float], float]:
    """(picks, their marginal gains in draw order, objective) of a Gumbel top-k draw of n_pick
    columns with logits temperature * z(singleton gain), from numpy's PCG64 seeded by `seed`."""
    single = singleton_gains(kernel, objective, eta=eta, nu=nu, **kw)
    noise = np.random.default_rng(list(seed)).gumbel(size=single.size)
    keys = temperature * _z(single) + noise
    if stop_at_zero_gain:  # a candidate that adds nothing alone adds nothing later
        keys[~(single > 0)] = -np.inf
        n_pick = min(n_pick, int(np.count_nonzero(single > 0)))
    picks = np.lexsort((np.arange(single.size), -keys))[:n_pick].tolist()
    values = [evaluate(kernel, np.asarray(picks[: r + 1], np.int64), objective, eta=eta, nu=nu, **kw)
              for r in range(len(picks))]
    gains = np.diff(np.asarray([0.0, *values])).tolist()
    return picks, gains, values[-1] if values else 0.0


def _sequential(kernel, n_pick: int, objective: str, kw: dict, eta: float, nu: float, temperature: float,
                seed: tuple[int, int], stop_at_zero_gain: bool) -> tuple[list[int], list[float], float]:
    """(picks, their marginal gains in draw order, objective) of n_pick draws one after another:
    step r picks the argmax of temperature * z(marginal gain given the r picks so far, z over the
    candidates left) + Gumbel noise (numpy's PCG64 seeded by `seed`, a key per candidate per
    step), i.e. a candidate left with probability proportional to exp(temperature * z). The
    marginal gains are the greedy's. With stop_at_zero_gain the draw stops when no candidate left
    adds anything."""
    v, rows, cols, base = _gain_terms(kernel, objective, kw.get("query_kernel"), eta, kw.get("private_kernel"), nu)
    best = np.array(base, dtype=np.float64)
    n_cols = kernel.shape[1]
    rng = np.random.default_rng(list(seed))
    left = np.ones(n_cols, dtype=bool)
    picks: list[int] = []
    gains: list[float] = []
    for _ in range(min(n_pick, n_cols)):
        gain = _column_gains(v, rows, cols, best, n_cols)
        keys = np.full(n_cols, -np.inf)
        keys[left] = temperature * _z(gain[left])
        if stop_at_zero_gain:
            keys[~(gain > 0)] = -np.inf
        noise = rng.gumbel(size=n_cols)
        if not np.isfinite(keys).any():
            break
        j = int(np.argmax(keys + noise))
        picks.append(j)
        gains.append(float(gain[j]))
        left[j] = False
        if rows is None:
            best = np.maximum(best, v[:, j])
        else:
            mine = cols == j
            np.maximum.at(best, rows[mine], v[mine])
    return picks, gains, float(np.maximum(best - base, 0.0).sum())
