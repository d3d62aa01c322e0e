"""TC-CLIP's text side: learnable prompt vectors and Video-conditional Prompting (spec §3).

The prompt is ``"a photo of a {name}."`` whose four context words are learnable vectors. Right before
the chosen text block(s), a cross-attention block (VP) rewrites those prompt positions from the video's
projected context tokens, so text features are computed per video.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from open_clip.model import CLIP
from open_clip.transformer import QuickGELU, ResidualAttentionBlock
from torch import Tensor, nn

from core.clip import layers as L
from core.clip import tokenize, trim_padding
from core.text_cache import TextFeatureCache

__all__ = ["PromptLearner", "make_vp_block", "normalize_class_name", "vp_text_features"]

_UPPER = re.compile(r"([A-Z])")


def normalize_class_name(name: str) -> str:
    """The official class-name clean-up, applied to every dataset (``parse_ucf101: true``).

    A space goes before every capital letter (``ApplyEyeMakeup`` -> ``Apply Eye Makeup``, ``TV`` -> ``T V``),
    then ``_`` becomes a space. The tokenizer later collapses repeated spaces.
    """
    return _UPPER.sub(r" \1", name).strip().replace("_", " ")


class PromptLearner(nn.Module):
    """The ``M`` learnable prompt vectors and the per-class-list prompt embeddings built around them.

    Args:
        clip: the backbone (its token embedding table initialises ``ctx`` and embeds the class names).
        n_ctx: number of learnable vectors ``M``.
        ctx_init: words initialising them (official ``'a photo of a'``); extra vectors beyond its word count,
            or all of them when empty, are drawn from N(0, 0.02) and stand for ``X`` words in the prompt.
        context_length: longest tokenised prompt accepted (official 30, or 77 for LLM-rephrased names).
    """

    def __init__(self, clip: CLIP, n_ctx: int = 4, ctx_init: str = "a photo of a", context_length: int = 77) -> None:
        super().__init__()
        if context_length > clip.positional_embedding.shape[0]:
            raise ValueError(f"context_length {context_length} exceeds the CLIP text context "
                             f"{clip.positional_embedding.shape[0]}")
        self.context_length = context_length
        width = clip.token_embedding.weight.shape[1]
        words = ctx_init.replace("_", " ").split() if ctx_init else []
        if len(words) > n_ctx:
            raise ValueError(f"ctx_init {ctx_init!r} has {len(words)} words but n_ctx is {n_ctx}; use n_ctx >= "
                             f"{len(words)} (each word initialises one learnable vector)")
        vectors = torch.empty(0, width)
        if words:
            ids = tokenize(" ".join(words), context_length)
            with torch.no_grad():
                vectors = _fp16_rounded(clip.token_embedding(ids))[0, 1:1 + len(words)].float()
        extra = torch.empty(n_ctx - len(words), width)
        nn.init.normal_(extra, std=0.02)
        self.ctx = nn.Parameter(torch.cat([vectors, extra], dim=0))
        self.prefix = " ".join(words + ["X"] * (n_ctx - len(words)))
        self.cache = TextFeatureCache()

    @property
    def n_ctx(self) -> int:
        return self.ctx.shape[0]

    def tokens_and_embeddings(self, clip: CLIP, class_texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Token ids (C, L') and frozen class-prompt embeddings (C, L', W) of ``"{prefix} {text}."``.

        ``L'`` stops right after the longest prompt's EOT: text attention is causal and pools at EOT, so
        the padding positions cannot change any output. The embeddings are rounded through fp16 as the
        official prompt learner's buffers are (it is built while CLIP is in fp16). Cached per class list.
        """
        return self.cache.get(class_texts, lambda: self._tokens_and_embeddings(clip, class_texts),
                              list(clip.token_embedding.parameters()), frozen=True)

    def _tokens_and_embeddings(self, clip: CLIP, class_texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        weight = clip.token_embedding.weight
        prompts = [f"{self.prefix} {text}." for text in class_texts]
        # one spare position: a prompt that does not fit is truncated onto it and so detected
        tokens = tokenize(prompts, self.context_length + 1)
        ends = tokens.argmax(dim=-1)
        too_long = [t for t, e in zip(class_texts, ends.tolist()) if e + 1 > self.context_length]
        if too_long:
            raise ValueError(f"class texts {too_long[:3]} do not fit the text context of {self.context_length} tokens "
                             f"(the official tokenizer refuses them too); shorten them or raise context_length "
                             f"(77 at most)")
        tokens = trim_padding(tokens).to(weight.device)
        with torch.no_grad():
            embeddings = _fp16_rounded(clip.token_embedding(tokens)).to(weight.dtype)
        return tokens, embeddings

    def forward(self, embeddings: Tensor) -> Tensor:
        """(C, L, W) class-prompt embeddings -> (C, L, W) with rows 1..M replaced by ``ctx``."""
        c = embeddings.shape[0]
        ctx = self.ctx.to(embeddings.dtype).unsqueeze(0).expand(c, -1, -1)
        return torch.cat([embeddings[:, :1], ctx, embeddings[:, 1 + self.n_ctx:]], dim=1)


def _fp16_rounded(x: Tensor) -> Tensor:
    return x.half().to(x.dtype)


def make_vp_block(clip: CLIP, init: str = "clip", text_block: int = -1) -> ResidualAttentionBlock:
    """The VP cross-attention block: a CLIP text block with an extra LayerNorm for keys/values.

    Args:
        clip: the backbone.
        init: ``"clip"`` copies text block ``text_block`` (``ln_1_kv`` = a copy of its ``ln_1``);
            ``"random"``: LayerNorms 1/0, Linear weights trunc-normal 0.02 with zero bias.
        text_block: index of the text block copied by ``"clip"`` init.
    """
    width = clip.ln_final.weight.shape[0]
    embed = clip.text_projection.shape[1]
    if embed != width:
        raise ValueError(f"VP needs the joint embedding dim ({embed}) to equal the text width ({width}), true for "
                         f"every OpenAI CLIP ViT")
    vp = ResidualAttentionBlock(width, width // 64, act_layer=QuickGELU, is_cross_attention=True)
    if init == "clip":
        state = clip.transformer.resblocks[text_block].state_dict()
        state["ln_1_kv.weight"] = state["ln_1.weight"].clone()
        state["ln_1_kv.bias"] = state["ln_1.bias"].clone()
        vp.load_state_dict(state)
    elif init == "random":
        for module in vp.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
    else:
        raise ValueError(f"prompt_generation_layer_init must be 'clip' or 'random'; got {init!r}")
    return vp


def vp_text_features(
    clip: CLIP,
    prompts: Tensor,
    tokens: Tensor,
    vp_blocks: nn.ModuleList,
    vp_levels: Sequence[int],
    context: Sequence[Tensor],
    n_ctx: int,
) -> Tensor:
    """Text features of every class for every video, L2-normalised.

    Args:
        clip: the backbone.
        prompts: (C, L, W) prompt embeddings (learnable ``ctx`` inserted at rows 1..M).
        tokens: (C, L) token ids (EOT = argmax).
        vp_blocks: VP block j runs right before text block ``vp_levels[j]``.
        vp_levels: 0-based text block indices, ascending.
        context: per VP block, the videos' projected context tokens (B, K, E) (already detached if wanted).
        n_ctx: M, the prompt positions VP rewrites.

    Returns:
        (B, C, E) unit-norm text features.
    """
    b = context[0].shape[0]
    c = prompts.shape[0]
    # all B·C sequences in one batch; video b's rows are b·C ... b·C + C-1
    x = prompts.unsqueeze(0).expand(b, -1, -1, -1).reshape(b * c, *prompts.shape[1:])
    kv = [s.unsqueeze(1).expand(-1, c, -1, -1).reshape(b * c, *s.shape[1:]) for s in context]

    def hook(i: int, h: Tensor) -> Tensor:
        if i not in vp_levels:
            return h
        j = vp_levels.index(i)
        vp = vp_blocks[j]
        p = h[:, 1:1 + n_ctx]
        # prompts query the context tokens only (no self-attention among prompts inside VP)
        p = p + vp.ls_1(L.attention(vp.attn, vp.ln_1(p), vp.ln_1_kv(kv[j])))
        p = p + vp.ls_2(vp.mlp(vp.ln_2(p)))
        return torch.cat([h[:, :1], p, h[:, 1 + n_ctx:]], dim=1)

    features = L.encode_text_embeddings(clip, x, tokens.repeat(b, 1), block_hook=hook)
    features = features / features.norm(dim=-1, keepdim=True)
    return features.reshape(b, c, -1)
