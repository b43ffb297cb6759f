"""Held-out evaluation of a (possibly LoRA-tuned) causal LM: NLL, ROUGE-L and embedding cosine.

Sequences follow the one layout of :mod:`delift_dvc.utility.layout` (the scorer's and the
training's): `template(prompt) + [eos] + response + [eos]`. The NLL is
teacher-forced over the response tokens and the final eos; generations are greedy, continue
after `template(prompt) + [eos]` and stop at eos. In ICL mode each query gets as one-shot
example its most similar sample of the selected subset (sentence-embedding cosine).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from delift_dvc.data.samples import Sample
from delift_dvc.errors import InputError
from delift_dvc.quality.finetune import collate, target_logits
from delift_dvc.selection.stratified import normalise_label
from delift_dvc.utility.embeddings import cosine_kernel, sample_text
from delift_dvc.utility.layout import Encoded, Layout, Templates

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_SCORER = None


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure x100 (rouge-score, Porter stemming) of prediction vs reference."""
    global _SCORER
    if _SCORER is None:
        from rouge_score import rouge_scorer

        _SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return 100.0 * float(_SCORER.score(reference, prediction)["rougeL"].fmeasure)


def nearest_examples(embedder: Any, test: Sequence[Sample], examples: Sequence[Sample]) -> list[int]:
    """For each test sample, the index into `examples` with the highest cosine similarity
    between the query prompt and the example's prompt+"\\n"+response (lowest index on ties;
    an example with the query's own id is never picked)."""
    if not examples:
        raise InputError("evaluate: the example subset is empty")
    queries = embedder.encode([s.prompt for s in test])
    keys = embedder.encode([sample_text(e.prompt, e.response) for e in examples])
    sims = cosine_kernel(queries, keys)
    position = {e.id: j for j, e in enumerate(examples)}
    for i, sample in enumerate(test):
        if sample.id in position and len(examples) > 1:
            sims[i, position[sample.id]] = -np.inf
    return [int(j) for j in np.argmax(sims, axis=1)]


def token_nll(
    model: Any, encoded: Sequence[Encoded], pad_id: int, batch_size: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced NLL sums [n] (nats, float64) and scored token counts [n] (int64) of the
    sequences; batches are formed in ascending length order."""
    import torch

    sums = np.zeros(len(encoded), dtype=np.float64)
    counts = np.array([e.n_scored for e in encoded], dtype=np.int64)
    order = sorted(range(len(encoded)), key=lambda k: (len(encoded[k].tokens), k))
    with torch.inference_mode():
        for first in range(0, len(order), batch_size):
            members = order[first : first + batch_size]
            logits, gold, rows = target_logits(model, collate([encoded[k] for k in members], pad_id))
            logp = torch.log_softmax(logits, dim=-1).gather(1, gold[:, None]).squeeze(1).double()
            per_row = torch.zeros(len(members), dtype=torch.float64).index_add_(0, rows.cpu(), -logp.cpu())
            sums[members] = per_row.numpy()
    return sums, counts


def generate(
    model: Any, contexts: Sequence[list[int]], eos_id: int, max_new_tokens: int = 64, batch_size: int = 8
) -> list[list[int]]:
    """Greedy continuations (token ids, final eos dropped, at most max_new_tokens) of each
    context; batches are left-padded with eos and formed in ascending length order."""
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(
        do_sample=False, num_beams=1, max_new_tokens=max_new_tokens, eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    device = next(model.parameters()).device
    out: list[list[int]] = [[] for _ in contexts]
    order = sorted(range(len(contexts)), key=lambda k: (len(contexts[k]), k))
    with torch.inference_mode():
        for first in range(0, len(order), batch_size):
            members = order[first : first + batch_size]
            width = max(len(contexts[k]) for k in members)
            ids = torch.full((len(members), width), eos_id, dtype=torch.long)
            mask = torch.zeros((len(members), width), dtype=torch.long)
            for row, k in enumerate(members):
                n = len(contexts[k])
                ids[row, width - n :] = torch.tensor(contexts[k])
                mask[row, width - n :] = 1
            result = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config
            )
            for row, k in enumerate(members):
                new = result[row, width:].tolist()
                out[k] = new[: new.index(eos_id)] if eos_id in new else new
    return out


def evaluate(tokenizer: Any, model: Any, test: Sequence[Sample], *, examples: Sequence[Sample] | None = None,
             max_new_tokens: int = 64, max_length: int = 1024, embedder: Any = None, batch_size: int = 8,
             templates: Templates = Templates(), chat: bool = False) -> dict:
    """Metrics of `model` on `test`: nll (nats/token, token-weighted over all responses + final
    eos), rouge_l (mean F x100), cosine (mean, generation vs reference, in [-1, 1]), exact
    (the share of generations equal to the reference as labels: selection.stratified's
    normalise_label on both) and per_sample rows. `examples`: the subset for one-shot ICL (None: no example)."""
    if not test:
        raise InputError("evaluate: no test samples")
    if embedder is None:
        from delift_dvc.utility.embeddings import Embedder

        embedder = Embedder()
    chosen: list[int | None] = [None] * len(test)
    if examples is not None:
        chosen = list(nearest_examples(embedder, test, examples))

    def pair(i: int) -> tuple[str, str] | None:
        j = chosen[i]
        return None if j is None else (examples[j].prompt, examples[j].response)

    layout = Layout(tokenizer, templates, max_length, chat=chat)
    eos = layout.eos
    ids = [s.id for s in test]
    turns = [s.turns for s in test]
    scored = layout.encode_many([(s.prompt, s.response, pair(i)) for i, s in enumerate(test)], ids=ids, turns=turns)
    prompts = [e.context for e in layout.encode_many([(s.prompt, None, pair(i)) for i, s in enumerate(test)],
                                                     reserve=max_new_tokens, ids=ids, turns=turns)]
    was_training = model.training
    model.eval()
    try:
        sums, counts = token_nll(model, scored, eos, batch_size)
        generated = generate(model, prompts, eos, max_new_tokens, batch_size)
    finally:
        model.train(was_training)
    texts = [tokenizer.decode(ids, skip_special_tokens=True) for ids in generated]
    rouge = [rouge_l(text, s.response) for text, s in zip(texts, test)]
    gen_emb = embedder.encode(texts)
    ref_emb = embedder.encode([s.response for s in test])
    cosine = np.sum(np.asarray(gen_emb, np.float64) * np.asarray(ref_emb, np.float64), axis=1)
    rows = []
    for i, s in enumerate(test):
        row = {"id": s.id, "nll": float(sums[i] / counts[i]), "rouge_l": rouge[i],
               "cosine": float(cosine[i]), "exact": float(normalise_label(texts[i]) == normalise_label(s.response)),
               "generation": texts[i]}
        if chosen[i] is not None:
            row["example"] = examples[chosen[i]].id
        rows.append(row)
    return {
        "n": len(test),
        "nll": float(sums.sum() / counts.sum()),
        "rouge_l": float(np.mean(rouge)),
        "cosine": float(np.mean(cosine)),
        "exact": float(np.mean([r["exact"] for r in rows])),
        "n_tokens": int(counts.sum()),
        "icl": examples is not None,
        "per_sample": rows,
    }
