"""Selection: exact greedy FL / FLMI / FLCG on dense or sparse kernels, scaling, the budget
rule, the selection methods and the incremental rule. Pure: knows nothing of models or files."""

from delift_dvc.selection.greedy import evaluate, maximize
from delift_dvc.selection.submodular import SelectionResult

__all__ = ["SelectionResult", "evaluate", "maximize"]
