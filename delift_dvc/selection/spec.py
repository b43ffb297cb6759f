"""How one selection picks, fixed before it runs (built once by the stage layer)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SelectionSpec"]


@dataclass(frozen=True)
class SelectionSpec:
    """`method` (delift, delift_se, random, full); FLMI magnification `eta` and FLCG hardness
    `nu`; kernel `scaling` (joint | separate); `stop_at_zero_gain`; `seed` of the random
    baseline and of the clusters; `coverage_weight` of the similarity objective added to a
    delift selection (0: off); `balance_clusters` MiniLM clusters splitting a delift budget
    (0 or 1: off); `strata` (none, group, group_label), `temperature` (None: the greedy;
    >= 0: a tempered draw) and `draw` (independent or sequential) of a stratified selection
    (selection.stratified), with `strata_clusters` MiniLM clusters as the groups when the data
    has a single one; `allocation` (proportional, balanced, or auto until the stage layer resolves
    it: balance.resolve_allocation) of a stratified selection's and of stratified_random's budget
    across the groups. How many
    to pick is the plan's (the budget rule applied once)."""

    method: str = "delift"
    eta: float = 1.0
    nu: float = 1.0
    scaling: str = "joint"
    stop_at_zero_gain: bool = False
    seed: int = 0
    coverage_weight: float = 0.0
    balance_clusters: int = 0
    strata: str = "none"
    temperature: float | None = None
    draw: str = "independent"
    strata_clusters: int = 16
    allocation: str = "proportional"

    @property
    def adds_coverage(self) -> bool:
        return self.method == "delift" and bool(self.coverage_weight)

    @property
    def balances(self) -> bool:
        return self.method == "delift" and self.balance_clusters > 1

    @property
    def stratifies(self) -> bool:
        """Whether the selection runs per stratum (a kernel method with strata or a temperature)."""
        return self.method in ("delift", "delift_se") and (self.strata != "none" or self.temperature is not None)
