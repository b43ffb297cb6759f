"""Selection: exact greedy FL / FLMI / FLCG on kernels, scaling, the budget rule, the three
DELIFT stages and the incremental rule. Pure: knows nothing of models or files."""

from delift_dvc.selection.submodular import SelectionResult, evaluate, maximize

__all__ = ["SelectionResult", "evaluate", "maximize"]
