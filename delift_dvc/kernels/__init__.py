"""Kernel sources: where the kernel of one selection comes from.

A source knows which values a plan needs, scores those the store lacks through an executor, and
reads the plan's kernel block back. One module per kind, named in the registry below:

- `dense`: every pair of LM utility (`utility.pairs: dense`);
- `knn`: each target with its k nearest examples (`utility.pairs: knn`);
- `surrogate`: LM-measured pairs plus a learned surrogate for the rest (`utility.pairs: surrogate`);
- `similarity`: MiniLM cosine similarity, the DELIFT (SE) baseline (`selection.method: delift_se`).

Adding a kind is one module with a class that follows :class:`KernelSource`, one line here and
its config keys. The registry holds import paths, so importing it (as config does) loads nothing.
"""

from __future__ import annotations

import importlib

__all__ = ["LM_SOURCES", "PAIR_MODES", "SOURCES", "source_class"]

# kind -> "module:class" of its KernelSource; the LM-utility kinds are the values of utility.pairs
LM_SOURCES = {
    "dense": "delift_dvc.kernels.dense:DenseSource",
    "knn": "delift_dvc.kernels.knn:KnnSource",
    "surrogate": "delift_dvc.kernels.surrogate:SurrogateSource",
}
SOURCES = {**LM_SOURCES, "similarity": "delift_dvc.kernels.similarity:SimilaritySource"}
PAIR_MODES = tuple(LM_SOURCES)


def source_class(kind: str) -> type:
    """The KernelSource class registered under `kind`; ValueError for an unknown kind."""
    if kind not in SOURCES:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(SOURCES)}")
    module, name = SOURCES[kind].split(":")
    return getattr(importlib.import_module(module), name)
