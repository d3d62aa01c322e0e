"""Text-to-video search: rank videos by a text query (``python -m core.predict videos/ --query "a person juggling"``).

Scores are cosines between the query's text embedding and each video's embedding (:mod:`core.features`,
computed fresh or read from an exported ``.npz``/``.safetensors``). The query goes through the method's own
text side without video conditioning: the method's text encoder where it has one (CLIP/ViFi-CLIP prompts,
T2L's adapted text tower, STAN's, ILA's frozen class-text features), else the CLIP text tower on the
method's class text (TC-CLIP, whose prompts are video-conditional at classification time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Match", "rank_features", "text_embeddings"]

# The method's text encoder, by attribute name, first found wins: (texts in the method's form) -> (N, E).
TEXT_ENCODERS = ("encode_texts", "encode_text", "encode_class_texts")


@dataclass
class Match:
    video: str
    score: float  # cosine similarity of query and video embeddings


def text_embeddings(model, queries: Sequence[str]) -> torch.Tensor:
    """(N, E) L2-normalised text embeddings of ``queries`` as ``model`` embeds class texts."""
    texts = model.class_texts(list(queries), {q: q for q in queries})  # a query is its own description
    with torch.inference_mode():
        for name in TEXT_ENCODERS:
            encoder = getattr(model, name, None)
            if callable(encoder):
                return F.normalize(encoder(texts).float(), dim=-1).cpu()
        from core.clip import layers as L
        from core.clip import tokenize
        from core.eval.sources import find_clip

        clip = find_clip(model)
        if clip is None:
            raise ValueError(f"{type(model).__name__} has no text encoder to embed a query with")
        tokens = tokenize(list(texts), clip.context_length).to(clip.token_embedding.weight.device)
        return F.normalize(L.encode_text(clip, tokens).float(), dim=-1).cpu()


def rank_features(names: Sequence[str], embeddings: np.ndarray, query_embedding: torch.Tensor,
                  top_k: int | None = None) -> list[Match]:
    """Videos sorted by cosine to the query (highest first), ties broken by name.

    Raises:
        ValueError: embedding widths differ (features from another model).
    """
    video = F.normalize(torch.as_tensor(np.asarray(embeddings), dtype=torch.float32), dim=-1)
    query = query_embedding.reshape(-1).float()
    if video.shape[0] and video.shape[1] != query.shape[0]:
        raise ValueError(f"the features are {video.shape[1]}-d but the model's text embeddings are "
                         f"{query.shape[0]}-d: search with the model that exported them")
    scores = (video @ query).tolist()
    order = sorted(range(len(names)), key=lambda i: (-scores[i], names[i]))
    return [Match(names[i], float(scores[i])) for i in order[: top_k or len(order)]]
