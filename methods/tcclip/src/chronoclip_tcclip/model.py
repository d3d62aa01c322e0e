"""TC-CLIP: Temporally Contextualized CLIP (Kim et al., ECCV 2024) on an open_clip ViT.

Paper: "Leveraging Temporal Contextualization for Video Action Recognition", arXiv 2404.09490.
Official code: https://github.com/naver-ai/tc-clip (commit 8728fe4); the method spec
(shared/methods/tcclip.md) records what that code does, and where it differs from the paper the
code is followed (it produced the released checkpoints).

Deliberate differences from the official implementation (none changes an output):
* the ViT-B/16 constants it hard-codes (196 patches, width 768 for the q/k/v split, VP width 512 with
  8 heads, vision layer 11) are read from the backbone;
* the text tower runs the B·C (video, class) sequences as one batch instead of a loop over videos, and
  stops the sequence after the longest prompt's EOT (causal attention + EOT pooling make the padding
  irrelevant, which is also why the official 30 and 77 token contexts agree);
* the video is cast to the model's dtype (the official code casts it to fp16 under apex O1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from open_clip.model import CLIP
from torch import Tensor, nn

from chronoclip_tcclip.merge import layer_merge_counts
from chronoclip_tcclip.options import TCCLIPOptions
from chronoclip_tcclip.text import PromptLearner, make_vp_block, normalize_class_name, vp_text_features
from chronoclip_tcclip.vision import TCSettings, VisionOutput, tc_vision_forward
from core.clip import IMAGENET_MEAN, IMAGENET_STD
from core.method import VideoModel
from core.objectives import classification_loss, head_precision

__all__ = ["TCCLIPModel", "parse_levels"]

# Parameter-name substrings of the parts the official recipe trains with 10x the base LR.
_LR_10X_PARTS = ("prompt_learner", "prompt_generation")


def parse_levels(level: int | str | Sequence[int] | None, num_text_layers: int) -> tuple[int, ...]:
    """1-based ``prompt_generation_layer_level`` (``12``, ``"10+12"`` or a list) -> sorted 0-based block indices.

    ``None`` means the last text block (the official default, 12 at ViT-B/16).
    """
    if level is None:
        levels = [num_text_layers]
    elif isinstance(level, str):
        levels = [int(part) for part in level.split("+")]
    elif isinstance(level, int):
        levels = [level]
    else:
        levels = [int(v) for v in level]
    bad = [v for v in levels if not 1 <= v <= num_text_layers]
    if bad or not levels:
        raise ValueError(f"prompt_generation_layer_level {level!r} must name text blocks 1..{num_text_layers} "
                         f"(1-based, e.g. {num_text_layers} for the last)")
    return tuple(v - 1 for v in sorted(set(levels)))


class TCCLIPModel(VideoModel):
    """TC-CLIP on an open_clip CLIP ViT; both towers, prompts, VP and bias tables train.

    Args:
        clip: the backbone (OpenAI CLIP weights for real runs); its token embedding table is frozen, as it is
            outside the official model.
        num_frames: T, fixed at construction as in the official TC blocks.
        options: the method options (:class:`~chronoclip_tcclip.options.TCCLIPOptions`).
    """

    input_mean = IMAGENET_MEAN
    input_std = IMAGENET_STD

    def __init__(self, clip: CLIP, *, num_frames: int, options: TCCLIPOptions) -> None:
        super().__init__(num_frames)
        if num_frames < 1:
            raise ValueError(f"num_frames must be positive; got {num_frames}")
        self.options = options
        self.clip = clip
        clip.token_embedding.requires_grad_(False)
        visual = clip.visual
        blocks = visual.transformer.resblocks
        text_layers = len(clip.transformer.resblocks)
        grid = visual.grid_size
        num_patches = grid[0] * grid[1]
        num_seeds = int(num_patches * options.seed_token_a)
        if not 1 <= num_seeds <= num_patches:
            raise ValueError(f"seed_token_a {options.seed_token_a} gives {num_seeds} seeds out of {num_patches} "
                             f"patches per frame; use a ratio in (0, 1] that keeps at least one")
        self.settings = TCSettings(num_frames=num_frames, num_patches=num_patches, num_seeds=num_seeds,
                                   num_context=options.context_token_k,
                                   merge_r=tuple(layer_merge_counts(len(blocks), options.tome_r, options.tome_d)),
                                   attention=options.attention)
        self.vp_levels = parse_levels(options.prompt_generation_layer_level, text_layers)
        if max(self.vp_levels) >= len(blocks):
            raise ValueError(f"VP level {max(self.vp_levels) + 1} needs that many vision blocks; the ViT has {len(blocks)}")
        self.im_stop_grad = options.im_stop_grad
        self.lr_10x = options.lr_10x
        self.prompt_learner = PromptLearner(clip, options.n_ctx, options.ctx_init, options.context_length)
        self.prompt_generation_layer = nn.ModuleList(
            [make_vp_block(clip, options.prompt_generation_layer_init, level) for level in self.vp_levels])
        heads = blocks[0].attn.num_heads
        tables = {}
        if options.local_global_bias:
            # block 0 has no incoming context, hence no table (official TCAttention.first_layer)
            for i in range(1, len(blocks)):
                table = torch.empty(heads, 1, 2)
                nn.init.trunc_normal_(table, std=0.02, a=-2.0, b=2.0)
                tables[str(i)] = nn.Parameter(table)
        self.local_global_bias_table = nn.ParameterDict(tables)

    # -- vision -------------------------------------------------------------------------------------
    def _vision(self, video: Tensor) -> VisionOutput:
        self.check_video(video)
        video = video.to(self.clip.visual.conv1.weight.dtype)
        tables = {int(i): t for i, t in self.local_global_bias_table.items()}
        return tc_vision_forward(self.clip.visual, tables, video, self.settings, self.vp_levels)

    @staticmethod
    def _video_embedding(frames: Tensor) -> Tensor:
        # mean over frames of the projected CLS tokens, normalised after averaging
        video = frames.mean(dim=1)
        return video / video.norm(dim=-1, keepdim=True)

    def encode_video(self, video: Tensor) -> Tensor:
        """Unit-norm video embedding (B, E) of a normalised clip batch (B, T, 3, H, W)."""
        return self._video_embedding(self._vision(video).frames)

    # -- text ---------------------------------------------------------------------------------------
    def class_texts(self, names: Sequence[str], descriptions: Mapping[str, str] | None = None) -> list[str]:
        """Normalised class names (or LLM-rephrased descriptions): CamelCase split, ``_`` -> space."""
        if descriptions is not None:
            missing = [n for n in names if n not in descriptions]
            if missing:
                raise ValueError(f"no description for classes {missing[:5]}; the description file must cover every "
                                 f"class name")
            return [normalize_class_name(descriptions[n]) for n in names]
        return [normalize_class_name(n) for n in names]

    def text_features(self, context: Sequence[Tensor], class_texts: Sequence[str]) -> Tensor:
        """Per-video unit-norm class features (B, C, E) given the VP inputs (B, K, E) per VP block."""
        if not class_texts:
            raise ValueError("classify needs at least one class text")
        tokens, embeddings = self.prompt_learner.tokens_and_embeddings(self.clip, class_texts)
        prompts = self.prompt_learner(embeddings)
        if self.im_stop_grad:
            context = [c.detach() for c in context]
        return vp_text_features(self.clip, prompts, tokens, self.prompt_generation_layer, self.vp_levels, context,
                                self.prompt_learner.n_ctx)

    # -- the VideoModel surface ---------------------------------------------------------------------
    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        """Logits (B, C) = ``exp(logit_scale) · cos(video_b, text_{b,c})`` with text features per video.

        Args:
            video: (B, T, 3, H, W), ImageNet-normalised.
            class_texts: texts from :meth:`class_texts`.
        """
        out = self._vision(video)
        video_emb = self._video_embedding(out.frames)
        text = self.text_features([out.context[i] for i in self.vp_levels], class_texts)
        scale = head_precision(self.clip.logit_scale.exp())
        video_emb, text = head_precision(video_emb), head_precision(text)  # at least fp32: bf16 logits tie classes
        # (scale · v_b) @ t_bᵀ, the official association order
        return ((scale * video_emb).unsqueeze(1) @ text.transpose(1, 2)).squeeze(1)

    def training_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Soft-target cross-entropy (mixup/cutmix targets) or cross-entropy on labels; no other term."""
        logits = self.classify(batch["video"], batch["class_texts"])
        loss = classification_loss(logits, batch.get("label"), batch.get("target"))
        return {"loss": loss, "ce": loss.detach(), "logits": logits}

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The official AdamW groups: weight decay on every tensor; ``ctx`` and VP at lr_scale 10 (``lr_10x``)."""
        groups: dict[str, list[nn.Parameter]] = {"base": [], **{part: [] for part in _LR_10X_PARTS}}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            part = next((p for p in _LR_10X_PARTS if p in name), "base") if self.lr_10x else "base"
            groups[part].append(param)
        return [{"name": name, "params": params, "lr_scale": 1.0 if name == "base" else 10.0,
                 "weight_decay": weight_decay} for name, params in groups.items() if params]
