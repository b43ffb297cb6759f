"""One entry to the exact greedy: a dense kernel goes to :mod:`.submodular`, a SparseKernel to
:mod:`.sparse`; both return the same SelectionResult on equivalent kernels."""

from __future__ import annotations

import numpy as np

from delift_dvc.selection.sparse import SparseKernel, evaluate_sparse, maximize_sparse
from delift_dvc.selection.submodular import SelectionResult, evaluate_dense, maximize_dense

__all__ = ["maximize", "evaluate"]


def maximize(kernel: np.ndarray | SparseKernel, budget: int | float, objective: str = "fl", *,
             query_kernel=None, eta: float = 1.0, private_kernel=None, nu: float = 1.0,
             stop_at_zero_gain: bool = False,
             partition: tuple[np.ndarray, np.ndarray] | None = None) -> SelectionResult:
    """Greedy subset of the columns of `kernel` [n_targets, n_candidates] (dense array or
    SparseKernel; the extra kernels of the same kind) under the objective (see
    :mod:`delift_dvc.selection.objectives`); `budget` by the budget rule, `partition` =
    (label per candidate, quota per label)."""
    solve = maximize_sparse if isinstance(kernel, SparseKernel) else maximize_dense
    return solve(kernel, budget, objective, query_kernel=query_kernel, eta=eta, private_kernel=private_kernel,
                 nu=nu, stop_at_zero_gain=stop_at_zero_gain, partition=partition)


def evaluate(kernel: np.ndarray | SparseKernel, indices: np.ndarray, objective: str = "fl", *,
             query_kernel=None, eta: float = 1.0, private_kernel=None, nu: float = 1.0) -> float:
    """f(indices): the objective of the chosen columns, dense or sparse alike."""
    value = evaluate_sparse if isinstance(kernel, SparseKernel) else evaluate_dense
    return value(kernel, indices, objective, query_kernel=query_kernel, eta=eta, private_kernel=private_kernel,
                 nu=nu)
