"""The comparison grid: which `dvc exp run` runs a comparison makes, and their overrides.

Every method runs once per seed: the seed is the fine-tuning seed (and the random baseline's
selection seed), so a method's spread includes the training noise. `full` runs at budget 1.0.
With `update`, the continual comparison instead runs a data update from the project's current
version to the `update` data: FLCG continuation (`flcg`), re-selection from scratch (`refresh`)
and random additions of the same size, uniform (`random_additions`) and stratified by the new
samples' groups (`stratified_additions`); before the runs of each budget the current version is
re-selected by DELIFT (the project's selection settings, as flcg and refresh use) at that
budget, so all four start from the same first subset and a fraction is one of the whole update. `delift_cov` is DELIFT with the
sentence-embedding coverage term (`selection.embedding_coverage`, weight `coverage`) and
`delift_bal` DELIFT with a format-balanced budget (`selection.balance_clusters`, `clusters`
k-means clusters), `delift_strata` DELIFT inside strata of group x answer label
(`selection.strata: group_label`, the greedy) and `delift_temp` the same with a tempered draw
(`selection.temperature`, `temperature`), `delift_seq` that draw made pick by pick
(`selection.draw: sequential`), `delift_balanced` the tempered draw with the budget balanced
across the groups (`selection.allocation: balanced`); plain `delift` runs with all of them off,
whatever params.yaml says, and the other methods too (the options are delift's only).
`balanced_random` is stratified random with that balanced allocation, the baseline of
`delift_balanced` (and `balanced_additions` its continual twin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from delift_dvc.errors import InputError
from delift_dvc.selection.methods import METHODS
from delift_dvc.selection.stratified import DRAW_TEMPERATURE

__all__ = ["Run", "grid", "first_version_overrides", "against", "CONTINUAL", "COMPARE_METHODS", "OPTIONS",
           "VARIANT_METHODS"]

# continual variants: (selection.method, selection.mode, selection.allocation or None: the project's)
CONTINUAL = {"flcg": ("delift", "incremental", None), "refresh": ("delift", "refresh", None),
             "random_additions": ("random", "incremental", "proportional"),
             "stratified_additions": ("stratified_random", "incremental", "proportional"),
             "balanced_additions": ("stratified_random", "incremental", "balanced")}
DEFAULT_CONTINUAL = ("flcg", "refresh", "random_additions", "stratified_additions")  # --update without --methods
# delift + embedding coverage / balanced budget / strata (greedy) / strata (tempered draw) / strata (sequential
# draw) / strata (tempered draw) with the budget balanced across groups
VARIANT_METHODS = ("delift_cov", "delift_bal", "delift_strata", "delift_temp", "delift_seq", "delift_balanced")
# baselines beyond selection.methods: stratified random with the balanced allocation
BASELINE_VARIANTS = {"balanced_random": ("stratified_random", {"allocation": "balanced"})}
COMPARE_METHODS = (*METHODS, *BASELINE_VARIANTS, *VARIANT_METHODS)
DEFAULT_COVERAGE = 0.25
DEFAULT_CLUSTERS = 12
DEFAULT_TEMPERATURE = DRAW_TEMPERATURE
# the delift options a compare method sets from a CLI value: method -> (params key under selection, CLI flag)
OPTIONS = {"delift_cov": ("embedding_coverage", "--embedding-coverage"),
           "delift_bal": ("balance_clusters", "--balance-clusters"),
           "delift_temp": ("temperature", "--temperature"), "delift_seq": ("temperature", "--temperature"),
           "delift_balanced": ("temperature", "--temperature")}
# every run sets each delift option: off, unless its method turns it on
OFF = {"embedding_coverage": "0", "balance_clusters": "0", "strata": "none", "temperature": "null",
       "draw": "independent", "allocation": "proportional"}
BASELINES = ("full", "random", "stratified_random", *BASELINE_VARIANTS, "random_additions", "stratified_additions",
             "balanced_additions")  # compared against, never compared


@dataclass(frozen=True)
class Run:
    """One experiment of the grid."""

    method: str
    budget: float | int
    seed: int
    update: str | None = None  # data.train of the update (continual comparison)
    coverage: float = DEFAULT_COVERAGE  # selection.embedding_coverage of delift_cov runs
    clusters: int = DEFAULT_CLUSTERS  # selection.balance_clusters of delift_bal runs
    temperature: float = DEFAULT_TEMPERATURE  # selection.temperature of delift_temp and delift_seq runs

    def overrides(self) -> list[str]:
        """`dvc exp run -S` arguments of this run."""
        common = [f"selection.budget={self.budget}", f"selection.seed={self.seed}", f"finetune.seed={self.seed}"]
        if self.update is not None:
            method, mode, allocation = CONTINUAL[self.method]
            off = [] if method == "delift" else [f"selection.{k}={v}" for k, v in
                                                 {**OFF, "allocation": allocation}.items()]
            return [f"data.train={self.update}", f"selection.method={method}", f"selection.mode={mode}", *common,
                    *off]
        method = "delift" if self.method in ("delift", *VARIANT_METHODS) else \
            BASELINE_VARIANTS.get(self.method, (self.method,))[0]
        options = {**OFF, **self.turned_on()}
        return [f"selection.method={method}", *common, "selection.mode=refresh",
                *[f"selection.{k}={v}" for k, v in options.items()]]

    def turned_on(self) -> dict[str, str]:
        """The selection keys this run's method sets away from OFF, with their values."""
        return {"delift_cov": {"embedding_coverage": f"{self.coverage:g}"},
                "delift_bal": {"balance_clusters": str(self.clusters)},
                "delift_strata": {"strata": "group_label"},
                "delift_temp": {"strata": "group_label", "temperature": f"{self.temperature:g}"},
                "delift_seq": {"strata": "group_label", "temperature": f"{self.temperature:g}", "draw": "sequential"},
                "delift_balanced": {"strata": "group_label", "temperature": f"{self.temperature:g}",
                                    "allocation": "balanced"},
                }.get(self.method, BASELINE_VARIANTS.get(self.method, ("", {}))[1])

    def option(self) -> float | int | None:
        """The value of the delift option this run's method sets from a CLI value (None for other methods)."""
        return {"delift_cov": self.coverage, "delift_bal": self.clusters, "delift_temp": self.temperature,
                "delift_seq": self.temperature, "delift_balanced": self.temperature}.get(self.method)

    def key(self) -> tuple[str, str, str]:
        return self.method, str(self.budget), str(self.seed)

    def name(self) -> str:
        """The experiment's name in `dvc exp show` and its log file's stem: method-bBUDGET-sSEED."""
        return f"{self.method}-b{self.budget}-s{self.seed}" + ("-update" if self.update is not None else "")


def grid(methods: Sequence[str], budgets: Sequence[float | int], seeds: Sequence[int],
         update: str | None = None, coverage: float = DEFAULT_COVERAGE,
         clusters: int = DEFAULT_CLUSTERS, temperature: float = DEFAULT_TEMPERATURE,
         variants: Sequence[str] | None = None) -> list[Run]:
    """The runs: every method once per budget and seed (`full` once per seed, at budget 1.0);
    with `update`, the continual variants per budget and seed instead (`variants` of CONTINUAL,
    None: DEFAULT_CONTINUAL, in CONTINUAL's order). Ordered budget by budget and, inside a budget, seed by
    seed with every method of a seed before the next seed, so a sweep stopped early leaves whole
    seeds to compare. `coverage`: the embedding coverage weight of
    `delift_cov` runs; `clusters`: the balance clusters of `delift_bal` runs; `temperature`: the
    draw's temperature of `delift_temp` and `delift_seq` runs."""
    if not budgets or not seeds:
        raise InputError("--budgets and --seeds: need at least one value each")
    if update is not None:
        unknown = [m for m in variants or () if m not in CONTINUAL]
        if unknown:
            raise InputError(f"--methods with --update: unknown continual variant {unknown[0]!r} "
                             f"(known: {', '.join(CONTINUAL)})")
        chosen = [m for m in CONTINUAL if (m in DEFAULT_CONTINUAL if variants is None else m in variants)]
        return [Run(m, b, s, update) for b in budgets for s in seeds for m in chosen]
    unknown = [m for m in methods if m not in COMPARE_METHODS]
    if unknown:
        raise InputError(f"--methods: unknown method {unknown[0]!r} (known: {', '.join(COMPARE_METHODS)})")
    if "delift_cov" in methods and not (coverage > 0 and coverage < float("inf")):
        raise InputError(f"--embedding-coverage {coverage!r}: expected a number > 0")
    if "delift_bal" in methods and not (isinstance(clusters, int) and clusters >= 2):
        raise InputError(f"--balance-clusters {clusters!r}: expected a whole number >= 2")
    drawn = {"delift_temp", "delift_seq", "delift_balanced"} & set(methods)
    if drawn and not (temperature >= 0 and temperature < float("inf")):
        raise InputError(f"--temperature {temperature!r}: expected a number >= 0")
    runs = []
    for k, budget in enumerate(budgets):
        for seed in seeds:
            runs.extend(Run(method, 1.0 if method == "full" else budget, seed, coverage=coverage,
                            clusters=clusters, temperature=temperature)
                        for method in methods if method != "full" or k == 0)
    return runs


def against(method: str) -> list[str]:
    """The methods `method` is compared with, on the same budget except `full`: random and
    stratified random (random additions in a continual comparison) and full; the delift
    variants (delift_cov, delift_bal, delift_strata, delift_temp, delift_seq, delift_balanced) also
    against delift, delift_seq and delift_balanced also against delift_temp (the draw or the
    allocation they change), delift_balanced also against balanced_random (its own allocation
    drawn at random); flcg also against refresh and balanced additions. [] for a baseline."""
    if method in BASELINES:
        return []
    names = ["random_additions", "stratified_additions"] if method in CONTINUAL else ["random", "stratified_random"]
    names.append("full")
    if method in VARIANT_METHODS:  # the option against the plain method it changes
        names.append("delift")
    if method in ("delift_seq", "delift_balanced"):
        names.append("delift_temp")
    if method == "delift_balanced":
        names.append("balanced_random")
    if method == "flcg":  # continuation against re-selecting from scratch, and random additions balanced
        names += ["refresh", "balanced_additions"]
    return names


def first_version_overrides(train: str, budget: float | int) -> list[str]:
    """`dvc exp run -S` arguments that re-select the project's current version (data.train =
    `train`, the first version of a continual comparison) with DELIFT at `budget`: every
    continual run at that budget then starts from the same subset, so its size is the budget of
    the whole update. The delift options (coverage, balance) are the project's, as in the runs."""
    return [f"data.train={train}", f"selection.budget={budget}", "selection.method=delift",
            "selection.mode=refresh"]
