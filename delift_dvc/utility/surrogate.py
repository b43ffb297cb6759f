"""A learned surrogate of the utility: UF(target, example) predicted from sentence embeddings.

The surrogate is a pure function of the LM-measured pairs, the embeddings and its
hyperparameters: a LightGBM regressor (deterministic mode, fixed seed and one thread) on
features of each (target, example) pair:

- the cosine of the two all-MiniLM-L6-v2 vectors;
- the target's measured `d0` (how much room an example has to help);
- both vectors through one fixed, seeded random projection to `dims` dimensions, and the absolute
  difference of the projections.

Which pairs the LM measures is the caller's choice (`choose_pairs`): `random` picks each target's
pairs uniformly among its candidates (as NN-CIFT samples pairs), `active` measures a first share
at random, then, round by round, each target's best predicted candidates not measured yet, where
facility location looks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["SurrogateConfig", "Surrogate", "fit", "features", "choose_pairs", "STRATEGIES"]

STRATEGIES = ("active", "random")  # utility.strategy


@dataclass(frozen=True)
class SurrogateConfig:
    """Hyperparameters of the surrogate (all part of its fingerprint)."""

    dims: int = 32  # random-projection dimensions per embedding
    trees: int = 300
    leaves: int = 31
    learning_rate: float = 0.05
    min_child_samples: int = 20
    seed: int = 0
    holdout: float = 0.1  # share of measured pairs kept out of fitting to report the fit

    def describe(self) -> dict:
        import lightgbm

        return {**asdict(self), "lightgbm": lightgbm.__version__, "features": "cos,d0,proj,|proj diff|"}


def _projection(dim_in: int, dims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((dim_in, dims)) / np.sqrt(dims)


def features(vectors: np.ndarray, d0: np.ndarray, targets: np.ndarray, examples: np.ndarray,
             config: SurrogateConfig) -> np.ndarray:
    """Features [m, 2 + 3 * dims] (float64) of the pairs (targets[k], examples[k]), indices
    into `vectors` [n, d] (unit-norm) and `d0` [n] (NaN where not measured)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    proj = vectors @ _projection(vectors.shape[1], config.dims, config.seed)
    t, e = np.asarray(targets, np.int64), np.asarray(examples, np.int64)
    cos = np.einsum("ij,ij->i", vectors[t], vectors[e])
    return np.hstack([cos[:, None], d0[t][:, None], proj[t], proj[e], np.abs(proj[t] - proj[e])])


def _held_out(keys: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A deterministic split of pair keys (int64 [m]): True for the held-out share."""
    mixed = (keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)) >> np.uint64(11)
    return (mixed.astype(np.float64) / 2.0**53) < share


@dataclass
class Surrogate:
    """A fitted surrogate: predict UF for pairs, and what its fit on held-out pairs was."""

    model: object
    config: SurrogateConfig
    spearman: float
    r2: float
    n_train: int
    n_heldout: int
    fingerprint: str

    def predict(self, x: np.ndarray) -> np.ndarray:
        """UF predictions [m] (float64) for features [m, ...]."""
        if len(x) == 0:
            return np.zeros(0)
        return np.asarray(self.model.predict(x, num_threads=1), dtype=np.float64)


def fit(x: np.ndarray, y: np.ndarray, keys: np.ndarray, config: SurrogateConfig) -> Surrogate:
    """Fit on measured pairs: features x [m, f], UF y [m], pair keys [m] (a stable int64 id of
    each pair, for the held-out split). The fingerprint hashes the training data and config."""
    import lightgbm
    from scipy.stats import spearmanr

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    keys = np.asarray(keys, np.int64)
    order = np.argsort(keys, kind="stable")  # the fit never depends on the order pairs came in
    x, y, keys = x[order], y[order], keys[order]
    out = _held_out(keys, config.holdout, config.seed) if len(y) >= 50 else np.zeros(len(y), bool)
    train = ~out
    params = {"objective": "regression", "num_leaves": config.leaves, "learning_rate": config.learning_rate,
              "min_child_samples": min(config.min_child_samples, max(1, int(train.sum()) // 4)),
              "seed": config.seed, "deterministic": True, "force_row_wise": True, "num_threads": 1,
              "verbosity": -1, "feature_pre_filter": False}
    model = lightgbm.train(params, lightgbm.Dataset(x[train], y[train]), num_boost_round=config.trees)
    spearman = r2 = float("nan")
    if out.sum() >= 10:
        pred = model.predict(x[out], num_threads=1)
        spearman = float(spearmanr(pred, y[out]).statistic)
        r2 = float(1.0 - np.sum((y[out] - pred) ** 2) / max(1e-300, np.sum((y[out] - y[out].mean()) ** 2)))
    digest = hashlib.sha256(json.dumps(config.describe(), sort_keys=True).encode())
    digest.update(keys.tobytes())
    digest.update(y.tobytes())
    digest.update(np.round(x, 12).tobytes())
    return Surrogate(model, config, spearman, r2, int(train.sum()), int(out.sum()), digest.hexdigest())


def choose_pairs(candidates: list[np.ndarray], measured: list[np.ndarray], want: np.ndarray,
                 strategy: str, rng_seed: int, target_keys: list[str],
                 scores: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """For each target t: up to want[t] more of its candidate examples (column indices) to
    measure, not in measured[t]. `random`: uniform among the rest, seeded per target id;
    `active` with `scores`: the best predicted first (ties to the lower column)."""
    out = []
    for t, cand in enumerate(candidates):
        rest = cand[~np.isin(cand, measured[t])]
        n = int(min(want[t], len(rest)))
        if n <= 0:
            out.append(np.zeros(0, np.int64))
            continue
        if strategy == "active" and scores is not None:
            s = scores[t][~np.isin(cand, measured[t])]
            order = np.lexsort((rest, -s))
            out.append(np.sort(rest[order[:n]]))
        else:
            seed = int.from_bytes(hashlib.sha256(f"{rng_seed}:{target_keys[t]}".encode()).digest()[:8], "big")
            out.append(np.sort(np.random.default_rng(seed).choice(rest, n, replace=False)))
    return out
