"""T2L: Temporal Token Learning on a frozen CLIP (Shahzad et al., TMLR 2025).

Paper: "T2L: Efficient Zero-Shot Action Recognition with Temporal Token Learning".
Official code: github.com/Shahzadnit/T2L @ 361dbd9 (``clip/model.py``, ``train.py``, ``utils/KLLoss.py``).
Implemented from chronoclip's spec ``shared/methods/t2l.md``, which follows the code where it differs from
the paper (the released checkpoints come from the code).

What T2L adds to a frozen OpenAI CLIP (all CLIP weights and ``logit_scale`` stay frozen):

* temporal tokens ``P`` (L, T, D), one per (vision layer, frame position). In block l the token of frame t
  is added to the mean of frame t's current tokens (CLS included), the T tokens of a video attend to
  each other through the block's **own** frozen ``ln_1`` and ``attn`` (no copy, no residual), and the
  result joins its frame as one extra token for the block's spatial attention, then is dropped;
* a bottleneck adapter ``x + fc2(GELU(fc1(x)))`` (D -> D/4 -> D) on the residual stream right after the
  attention residual, in every vision and every text block;
* a frozen (zero in every official checkpoint) ``temporal_embedding`` (1, T, D) added to all tokens of
  frame t before ``ln_pre``.

The video embedding is the plain mean of the per-frame CLIP embeddings; eval logits are
``100 * cos(video, text)``; class texts are LLM descriptions used verbatim (no template).

Deliberate differences from the official code (none changes the eval forward): drop-path draws one
keep/drop decision per video instead of per token position across the batch; text features are
cached between eval batches; texts longer than the context are truncated instead of raising.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chronoclip_t2l.layers import Adapter, drop_path
from chronoclip_t2l.losses import inbatch_kl_loss, tfd_loss
from chronoclip_t2l.options import TEXT_MODES, T2LOptions
from core.clip import CLIP, tokenize, trim_padding
from core.clip import layers as L
from core.method import VideoModel
from core.objectives import head_precision
from core.text_cache import TextFeatureCache, clip_text_parameters

logger = logging.getLogger(__name__)

__all__ = ["EVAL_LOGIT_SCALE", "TEXT_MODES", "TEXT_TEMPLATES", "T2LModel"]

# test.validate multiplies cosines by a hard-coded 100, not exp(logit_scale).
EVAL_LOGIT_SCALE = 100.0

# ActionCLIP's templates, used only with use_llm: False (text_mode "templates"; an ablation in the paper).
TEXT_TEMPLATES = (
    "a photo of action {}", "a picture of action {}", "Human action of {}", "{}, an action",
    "{} this is an action", "{}, a video of action", "Playing action of {}", "{}",
    "Playing a kind of action, {}", "Doing a kind of action, {}", "Look, the human is {}",
    "Can you recognize the action of {}?", "Video classification of {}", "A video of {}",
    "The man is {}", "The woman is {}",
)


def _token_init_bound(width: int) -> float:
    # The official init hard-codes a 16x16 patch in this Xavier-style bound, whatever the real patch size.
    return math.sqrt(6.0 / (3 * 16 * 16 + width))


class T2LModel(VideoModel):
    """A frozen CLIP with T2L's temporal tokens and adapters.

    Args:
        clip: the open_clip CLIP ViT (QuickGELU for OpenAI weights); it is frozen in place.
        num_frames: T, fixed by the temporal tokens / temporal embedding.
        options: the method options (:class:`~chronoclip_t2l.options.T2LOptions`).
    """

    def __init__(self, clip: CLIP, num_frames: int, options: T2LOptions) -> None:
        super().__init__(num_frames)
        self.options = options
        if num_frames < 2 and options.tfd_weight:
            raise ValueError(f"T2L's TFD loss needs at least 2 frames per clip; got num_frames={num_frames}")
        self.clip = clip.requires_grad_(False)
        visual = clip.visual
        width = visual.conv1.out_channels
        vision_layers = len(visual.transformer.resblocks)
        text_width = clip.ln_final.normalized_shape[0]
        self.text_mode = options.text_mode
        self.token_dropout = options.token_dropout
        self.tfd_weight = options.tfd_weight
        self.train_logits = options.train_logits
        drop_path_rate = options.drop_path_rate
        self.token_lr_scale = float(options.token_lr_scale)
        self.drop_rates = (torch.linspace(0, drop_path_rate, vision_layers).tolist() if drop_path_rate > 0
                           else [0.0] * vision_layers)

        # Frozen, zero-initialised: its name matched neither of the official trainable filters.
        self.temporal_embedding = nn.Parameter(torch.zeros(1, num_frames, width), requires_grad=False)
        self.temporal_tokens: nn.Parameter | None = None
        if options.temporal_tokens:
            bound = _token_init_bound(width)
            self.temporal_tokens = nn.Parameter(torch.empty(vision_layers, num_frames, width).uniform_(-bound, bound))
        self.visual_adapters = nn.ModuleList(Adapter(width) for _ in range(vision_layers))
        self.text_adapters = nn.ModuleList(Adapter(text_width) for _ in clip.transformer.resblocks)
        self.text_cache = TextFeatureCache()
        self._warned_no_descriptions = False

    # -- vision ------------------------------------------------------------------------------------
    def _rate(self, layer: int) -> float:
        return self.drop_rates[min(layer, len(self.drop_rates) - 1)] if self.training else 0.0

    def _visual_block(self, layer: int, block: nn.Module, x: Tensor, videos: int) -> Tensor:
        """One vision block with the temporal token (spec 2.1). x: (B*T, N+1, D), video-major."""
        rate = self._rate(layer)
        frames, tokens, width = x.shape
        steps = frames // videos
        normed = block.ln_1(x)
        keys = normed
        if self.temporal_tokens is not None:
            # Link (eq. 1): token of frame t + mean over that frame's N+1 tokens of the raw residual stream.
            prompt = F.dropout(self.temporal_tokens[layer], self.token_dropout, self.training).to(x.dtype)
            linked = prompt + x.view(videos, steps, tokens, width).mean(dim=2)  # (B, T, D)
            # Eq. 2/3: attention across the T frames of each video with the block's own ln_1/attn, no residual.
            temporal = L.attention(block.attn, block.ln_1(linked), dropout_p=rate)
            temporal = drop_path(temporal, rate, self.training, videos)
            # Eq. 4: the temporal token joins its frame as an extra key/value of the spatial attention. The
            # official code appends it to the residual stream, attends over N+2 tokens and drops its row
            # afterwards; LayerNorm is per token, so normalising it alone and never computing its (discarded)
            # query row gives the same result without copying the residual stream.
            keys = torch.cat([normed.view(videos, steps, tokens, width), block.ln_1(temporal)[:, :, None]], dim=2)
            keys = keys.view(frames, tokens + 1, width)
        attended = L.attention(block.attn, normed, keys, dropout_p=rate)
        x = x + drop_path(block.ls_1(attended), rate, self.training, videos)
        x = self.visual_adapters[layer](x)
        return x + drop_path(block.ls_2(block.mlp(block.ln_2(x))), rate, self.training, videos)

    def encode_frames(self, video: Tensor) -> Tensor:
        """Per-frame embeddings ``ln_post(CLS) @ proj``.

        Args:
            video: (B, T, 3, H, W) CLIP-normalised.

        Returns:
            (B, T, E) un-normalised.
        """
        self.check_video(video)
        videos, steps = video.shape[:2]
        visual = self.clip.visual
        x = L.embed_patches(visual, video.flatten(0, 1))  # (B*T, N+1, D)
        tokens, width = x.shape[1:]
        x = x.view(videos, steps, tokens, width) + self.temporal_embedding.to(x.dtype)[:, :, None]
        x = visual.ln_pre(x.view(videos * steps, tokens, width))
        for layer, block in enumerate(visual.transformer.resblocks):
            x = self._visual_block(layer, block, x, videos)
        return L.vision_head(visual, x[:, 0]).view(videos, steps, -1)

    def encode_video(self, video: Tensor) -> Tensor:
        """(B, T, 3, H, W) -> (B, E): mean of the un-normalised frame embeddings."""
        return self.encode_frames(video).mean(dim=1)

    # -- text --------------------------------------------------------------------------------------
    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """Text tower with an adapter after every attention residual (spec 3.1).

        Args:
            tokens: (C, L) token ids, EOT = the largest id of each row.

        Returns:
            (C, E) un-normalised text embeddings.
        """
        clip = self.clip
        length = tokens.shape[1]
        x = L.token_embeddings(clip, tokens)
        x = x + clip.positional_embedding[:length].to(x.dtype)
        mask = clip.attn_mask[:length, :length] if clip.attn_mask is not None else None
        count = x.shape[0]
        for layer, block in enumerate(clip.transformer.resblocks):
            rate = self._rate(layer)
            attended = L.attention(block.attn, block.ln_1(x), attn_mask=mask, dropout_p=rate)
            x = x + drop_path(block.ls_1(attended), rate, self.training, count)
            x = self.text_adapters[layer](x)
            x = x + drop_path(block.ls_2(block.mlp(block.ln_2(x))), rate, self.training, count)
        x = clip.ln_final(x)
        pooled = x[torch.arange(count, device=x.device), tokens.argmax(dim=-1)]
        proj = clip.text_projection
        return proj(pooled) if isinstance(proj, nn.Module) else pooled @ proj

    def _tokens(self, texts: Sequence[str]) -> Tensor:
        """(C, L') token ids, trimmed to the longest text: with the causal mask and EOT pooling, positions after
        a row's EOT cannot change its embedding, so the padding is skipped."""
        return trim_padding(tokenize(list(texts), self.clip.context_length)).to(self.clip.token_embedding.weight.device)

    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """(C, E) embeddings of ``texts``; reused while the texts, the text side (CLIP's text tower and the
        text adapters) and its device/dtype are unchanged, never while they need gradients
        (:class:`core.text_cache.TextFeatureCache`; cleared by ``train()``/``eval()``)."""
        params = [*clip_text_parameters(self.clip), *self.text_adapters.parameters()]
        return self.text_cache.get(texts, lambda: self.encode_tokens(self._tokens(texts)), params)

    def class_texts(self, names: Sequence[str], descriptions: Mapping[str, str] | None = None) -> list[str]:
        """One text per class: its LLM description with newlines deleted (templates mode: the cleaned name).

        Without ``descriptions`` (a class list no LLM described, e.g. the synthetic dataset) each name is
        its own description, as chronoclip's evaluation does; the official recipes always pass them.

        Raises:
            ValueError: ``descriptions`` given but lacking a class.
        """
        if self.text_mode == "templates":
            return [name.replace("_", " ") for name in names]
        if descriptions is None:
            log = logger.info if self._warned_no_descriptions else logger.warning
            self._warned_no_descriptions = True
            log("T2L: no class descriptions given; using the %d class names as their own descriptions "
                           "(the official recipes use the LLM descriptions of the dataset catalog)", len(names))
            return list(names)
        missing = [n for n in names if n not in descriptions]
        if missing:
            raise ValueError(f"no description for classes {missing[:5]}{' ...' if len(missing) > 5 else ''}; "
                             f"the description file must name every class exactly")
        return [descriptions[n].replace("\n", "") for n in names]

    # -- logits and losses -------------------------------------------------------------------------
    def _logits_from(self, video_features: Tensor, class_texts: Sequence[str]) -> Tensor:
        video_features = F.normalize(head_precision(video_features), dim=-1)  # at least fp32: bf16 logits tie
        if self.text_mode == "descriptions":
            text = F.normalize(head_precision(self.encode_texts(class_texts)), dim=-1)
            return EVAL_LOGIT_SCALE * video_features @ text.t()
        # Templates: softmax per template over the C classes, then the mean probability (test.validate).
        # Its log is returned, so a softmax downstream gives back exactly the averaged probabilities.
        prompts = [template.format(name) for template in TEXT_TEMPLATES for name in class_texts]
        text = F.normalize(head_precision(self.encode_texts(prompts)), dim=-1)
        scores = (EVAL_LOGIT_SCALE * video_features @ text.t()).view(len(video_features), len(TEXT_TEMPLATES), -1)
        return scores.softmax(dim=-1).mean(dim=1).log()

    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        """Eval logits (B, C) = ``100 * cos(mean_t f_t, text)`` as the official ``test.validate``."""
        return self._logits_from(self.encode_video(video), class_texts)

    def _sample_texts(self, labels: Tensor, class_texts: Sequence[str]) -> list[str]:
        names = [class_texts[i] for i in labels.tolist()]
        if self.text_mode == "descriptions":
            return names
        picks = torch.randint(len(TEXT_TEMPLATES), (len(names),)).tolist()
        return [TEXT_TEMPLATES[k].format(name) for k, name in zip(picks, names)]

    def training_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """The official loss: ``(KL_v2t + KL_t2v) / 2 + tfd_weight * TFD`` over the (global) batch.

        Args:
            batch: ``video`` (B, T, 3, H, W), ``label`` (B,), ``class_texts`` (C texts from :meth:`class_texts`).
                Soft ``target`` (mixup) is rejected: the in-batch targets are built from hard labels.

        Returns:
            ``loss``, ``loss_v2t``, ``loss_t2v``, ``loss_tfd`` (detached terms) and, with ``train_logits``,
            the (B, C) eval-style ``logits`` of the local batch.
        """
        if batch.get("target") is not None:
            raise ValueError("T2L's in-batch KL loss is defined by hard labels; set data.mixup: null and "
                             "data.label_smoothing: 0 in the recipe")
        self.text_cache.clear()
        labels = batch["label"]
        frames = self.encode_frames(batch["video"])
        video = frames.mean(dim=1)
        text = self.encode_tokens(self._tokens(self._sample_texts(labels, batch["class_texts"])))
        loss_v2t, loss_t2v, _ = inbatch_kl_loss(video, text, labels, self.clip.logit_scale.exp())
        loss = (loss_v2t + loss_t2v) / 2
        loss_tfd = tfd_loss(frames) if self.tfd_weight else torch.zeros((), device=loss.device)
        loss = loss + self.tfd_weight * loss_tfd
        out = {"loss": loss, "loss_v2t": loss_v2t.detach(), "loss_t2v": loss_t2v.detach(), "loss_tfd": loss_tfd.detach()}
        if self.train_logits:
            with torch.no_grad():
                out["logits"] = self._logits_from(video.detach(), batch["class_texts"])
        return out

    # -- optimisation ------------------------------------------------------------------------------
    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The official AdamW groups: text side and visual side, at ``optim.lr``, weight decay on every tensor.

        The official optimizer decays all parameters (temporal tokens and biases included) and splits them
        into non-visual / visual groups whose lr ratio is 1 in every released config. With
        ``token_lr_scale != 1`` the temporal tokens get a third group at ``lr * token_lr_scale``.

        Why a recipe may want that: everything in T2L except the temporal tokens treats the T frames as an
        unordered set (per-frame blocks, attention across frames without positions, mean pooling), so a
        clip and its time reversal get the same embedding until the tokens, initialised at about +-0.06,
        are large next to the frame means they are added to.
        """
        tokens = [self.temporal_tokens] if self.temporal_tokens is not None else []
        separate = self.token_lr_scale != 1.0
        visual = ([] if separate else tokens) + list(self.visual_adapters.parameters())
        groups = [{"name": "text", "params": list(self.text_adapters.parameters()), "lr_scale": 1.0,
                   "weight_decay": weight_decay},
                  {"name": "visual", "params": visual, "lr_scale": 1.0, "weight_decay": weight_decay}]
        if separate:
            groups.append({"name": "temporal_tokens", "params": tokens, "lr_scale": self.token_lr_scale,
                           "weight_decay": weight_decay})
        for group in groups:
            group["params"] = [p for p in group["params"] if p.requires_grad]
        return [g for g in groups if g["params"]]
