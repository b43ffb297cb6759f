"""Sentence-embedding similarity: the DELIFT (SE) kernel (`selection.method: delift_se`), and
the coverage term and clusters that delift selections may add (`selection.embedding_coverage`,
`selection.balance_clusters`)."""

from __future__ import annotations

import numpy as np

from delift_dvc.kernels.base import Block, PlanContext, Scored
from delift_dvc.progress import Reporter
from delift_dvc.selection.sparse import SparseKernel
from delift_dvc.utility.embeddings import cosine_kernel

__all__ = ["SE_KERNEL", "SimilaritySource", "coverage_block", "embedding_parts"]

SE_KERNEL = "all-MiniLM-L6-v2"  # the identity of this kernel in records (another embedding model: its name)


class SimilaritySource:
    """Cosine similarity [|ground|, |examples|] of sentence embeddings (all-MiniLM-L6-v2, or
    utility.embedding_model); scores nothing."""

    @classmethod
    def from_params(cls, params) -> "SimilaritySource":
        return cls()

    def score(self, ctx: PlanContext, reporter: Reporter) -> Scored:
        return Scored()

    def read(self, ctx: PlanContext, scored: Scored | None = None) -> tuple[Block, str]:
        from delift_dvc.utility.embeddings import embedding_name

        vectors = ctx.vectors()
        return cosine_kernel(ctx.ground_rows(vectors), vectors), embedding_name(ctx.embedding_model)


def coverage_block(ctx: PlanContext, block: Block) -> Block:
    """The similarity that embedding coverage adds, in the shape of the utility `block`
    [|ground|, |examples|]: dense cosine for a dense block, cosine at the block's stored
    entries for a sparse one (memory O(nnz))."""
    vectors = ctx.vectors()
    ground = ctx.ground_rows(vectors)
    if not isinstance(block, SparseKernel):
        return cosine_kernel(ground, vectors)
    rows, values = block.rows(), np.empty(block.nnz)
    for c0 in range(0, block.nnz, 1 << 16):
        r, c = rows[c0:c0 + (1 << 16)], block.indices[c0:c0 + (1 << 16)]
        values[c0:c0 + len(r)] = np.einsum("ij,ij->i", ground[r].astype(np.float64), vectors[c].astype(np.float64))
    return block.with_values(values)


def embedding_parts(ctx: PlanContext, clusters: int, seed: int) -> np.ndarray:
    """A MiniLM k-means cluster label per ground sample (plan.ground's order), `clusters` of them."""
    from delift_dvc.selection.balance import embedding_clusters

    return embedding_clusters(ctx.ground_rows(ctx.vectors()), clusters, seed)
