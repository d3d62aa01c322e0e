"""The options of ``--method tcclip`` (a recipe's ``method_options``): every option and its default, once.

The names are the official config keys (naver-ai/tc-clip ``configs/``); the defaults are the released models'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CHECKPOINT_CONFIG_KEYS", "TCCLIPOptions"]


@dataclass(frozen=True)
class TCCLIPOptions:
    """TC-CLIP's options."""

    # K context tokens kept per block.
    context_token_k: int = 96
    # Seed ratio: int(P * a) seed tokens per frame (58 of 196 patches at ViT-B/16).
    seed_token_a: float = 0.3
    # Tokens merged per bipartite (ToMe) round ...
    tome_r: int = 100
    # ... and its inflection over depth (0 = constant).
    tome_d: float = 0.0
    # Learnable prompt vectors ...
    n_ctx: int = 4
    # ... and the words initialising them.
    ctx_init: str = "a photo of a"
    # 1-based text block(s) preceded by video-conditional prompting (VP): 12, "10+12" or a list; the same index
    # picks the vision block whose context tokens feed it. None = the last block.
    prompt_generation_layer_level: int | str | tuple[int, ...] | None = None
    # VP block initialisation: "clip" (a copy of that text block) or "random".
    prompt_generation_layer_init: Literal["clip", "random"] = "clip"
    # Per-head local/context attention bias in vision blocks 1..L-1.
    local_global_bias: bool = True
    # Detach the context tokens entering VP.
    im_stop_grad: bool = True
    # Longest class prompt accepted, in tokens (official 30; 77 for LLM-rephrased names).
    context_length: int = 77
    # param_groups gives prompt_learner and VP lr_scale 10 (the official recipe's 10x LR).
    lr_10x: bool = True
    # How the TC attention is computed: "official" (the authors' order, full probabilities; fp32 parity) or
    # "sdpa" (fused output + an explicit CLS-row softmax for the seed scores; README "Attention modes").
    attention: Literal["official", "sdpa"] = "official"

    def __post_init__(self) -> None:
        if self.context_token_k < 1:
            raise ValueError(f"context_token_k must be positive; got {self.context_token_k}")


# Options that the authors' checkpoints store in their config and the loader reads from there.
CHECKPOINT_CONFIG_KEYS = ("context_token_k", "seed_token_a", "tome_r", "tome_d", "ctx_init",
                          "prompt_generation_layer_level", "im_stop_grad")
