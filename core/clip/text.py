"""Class texts for CLIP: tokenisation, templates, descriptions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import open_clip
import torch

__all__ = ["DEFAULT_TEMPLATE", "class_prompts", "tokenize", "trim_padding"]

# ViFi-CLIP's hand-written prompt; the `clip` and `vifi` baselines use it.
DEFAULT_TEMPLATE = "a photo of a {}."


def tokenize(texts: str | Sequence[str], context_length: int = 77) -> torch.Tensor:
    """OpenAI's CLIP BPE (ftfy, HTML unescape, whitespace collapse, lower case), SOT/EOT, zero padding.

    Texts longer than ``context_length`` are truncated with EOT kept as the last token (open_clip's
    behaviour; the official repositories raise instead).

    Returns:
        (C, context_length) long tensor.
    """
    return open_clip.tokenize(texts, context_length=context_length)


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """``tokens`` (C, L) cut after the longest row's EOT.

    CLIP's text attention is causal and pools at EOT, so positions after a row's EOT cannot change its
    embedding: the trimmed tokens give the same features at a fraction of the cost.
    """
    return tokens[:, : int((tokens != 0).sum(dim=1).max())]


def class_prompts(
    names: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    descriptions: Mapping[str, str] | None = None,
) -> list[str]:
    """One text per class: its description when given, else ``template`` filled with the name."""
    if descriptions is not None:
        missing = [n for n in names if n not in descriptions]
        if missing:
            raise ValueError(f"no description for classes {missing[:5]}{' ...' if len(missing) > 5 else ''}; "
                             f"the description file must cover every class name exactly")
        return [descriptions[n] for n in names]
    return [template.format(name) for name in names]
