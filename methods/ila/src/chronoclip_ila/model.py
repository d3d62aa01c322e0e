"""ILA models: the Kinetics-400 model (X-CLIP text head) and the Something-Something-v2 variant (linear head).

Tu et al., *Implicit Temporal Modeling with Learnable Alignment for Video Recognition*, ICCV 2023.
Official code: https://github.com/Francis-Rings/ILA (``master`` @ 1a912d9: K400; ``SSV2`` @ 47c93d0: SSv2).
The port follows the official code where it differs from the paper (see the package README and
``shared/methods/ila.md`` §12). Deliberate differences from the official code, none of which changes the
clean eval forward:

* the train-time mask jitter follows ``module.training`` (the official code uses a separate default-True flag);
* evaluation keeps BatchNorm on running statistics (the official ``cache_text`` switches the model back to
  ``train()`` on every call, so its validation ran the ILA BatchNorms on batch statistics);
* the cached class-text features are keyed by the class list and the text weights (``core.text_cache``; the
  official cache never invalidates);
* the prompt generator and ``prompts_visual_*``, which the official optimizer never updates, are frozen
  (``requires_grad=False``) instead of silently untrained.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from open_clip.model import CLIP
from open_clip.tokenizer import SimpleTokenizer
from torch import Tensor, nn

from chronoclip_ila.block import ILABlock
from chronoclip_ila.options import ILAOptions
from chronoclip_ila.xclip import MultiframeIntegrationTransformer, VideoSpecificPrompt
from core.clip import IMAGENET_MEAN, IMAGENET_STD, tokenize
from core.clip import layers as L
from core.method import VideoModel
from core.objectives import classification_loss, head_precision
from core.text_cache import TextFeatureCache, clip_text_parameters

__all__ = ["ILAModel", "ILASSv2Model", "jitter_delta_at"]

# Train-time jitter of the interactive points: 0.2, halved at the start of every epoch from epoch 30 on.
JITTER_DELTA = 0.2
JITTER_DECAY_EPOCH = 30


def jitter_delta_at(epoch: int) -> float:
    """The official mask-jitter delta during ``epoch`` (0-based): 0.2 until epoch 29, then 0.1, 0.05, ..."""
    return JITTER_DELTA * 0.5 ** max(0, epoch - JITTER_DECAY_EPOCH + 1)


def _no_decay(name: str, param: nn.Parameter) -> bool:
    # official set_weight_decay: 1-D tensors, biases, and names containing 'positional_embedding'
    return param.ndim <= 1 or name.endswith(".bias") or "positional_embedding" in name


def _groups(named: Mapping[str, Sequence[tuple[str, nn.Parameter]]], scales: Mapping[str, float],
            decays: Mapping[str, float]) -> list[dict[str, Any]]:
    groups = []
    for key, params in named.items():
        trainable = [(n, p) for n, p in params if p.requires_grad]
        decay = [p for n, p in trainable if not _no_decay(n, p)]
        no_decay = [p for n, p in trainable if _no_decay(n, p)]
        groups.append({"name": key, "params": decay, "lr_scale": scales[key], "weight_decay": decays[key]})
        groups.append({"name": f"{key}_no_decay", "params": no_decay, "lr_scale": scales[key], "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def encode_ila_tokens(clip: CLIP, blocks: nn.ModuleList, video: Tensor, jitter_delta: float | None
                      ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """The ILA vision tower on a clip batch.

    Args:
        clip: the backbone (its visual tower is used).
        blocks: one :class:`ILABlock` per CLIP vision block.
        video: (B, T, 3, S, S) normalised.
        jitter_delta: ``None`` in eval, the train-time mask jitter otherwise.

    Returns:
        ``tokens`` (B*T, L, d) after the last block (before ``ln_post``), the per-block alignment losses and
        the per-block points (B, P, 4).
    """
    visual = clip.visual
    x = visual.ln_pre(L.embed_patches(visual, video.flatten(0, 1)))
    losses, points = [], []
    for block, clip_block in zip(blocks, visual.transformer.resblocks):
        out = block(x, clip_block, jitter_delta)
        x = out.tokens
        losses.append(out.loss)
        points.append(out.points)
    return x, losses, points


@functools.lru_cache(maxsize=1)
def _bpe() -> SimpleTokenizer:
    return SimpleTokenizer()


def _tokenize_strict(texts: Sequence[str], context_length: int) -> Tensor:
    """CLIP BPE tokens (C, L); like the official ``clip.tokenize``, a text longer than the context is an error."""
    for text in texts:
        length = len(_bpe().encode(text)) + 2  # + SOT/EOT
        if length > context_length:
            raise ValueError(f"class text {text!r} is {length} tokens, longer than the {context_length}-token context; "
                             f"shorten it (the official code refuses such names too)")
    return tokenize(list(texts), context_length)


def _build_blocks(clip: CLIP, num_frames: int, variant: str, drop_path_rate: float, channels: int) -> nn.ModuleList:
    visual = clip.visual
    width = visual.conv1.out_channels
    grid = visual.grid_size[0]
    depth = len(visual.transformer.resblocks)
    rates = torch.linspace(0, drop_path_rate, depth).tolist() if drop_path_rate > 0 else [0.0] * depth
    return nn.ModuleList(ILABlock(width, num_frames, grid, variant, rate, channels) for rate in rates)


def _check_backbone(clip: CLIP, num_frames: int) -> None:
    visual = clip.visual
    if not hasattr(visual, "conv1") or getattr(visual, "attn_pool", None) is not None:
        raise ValueError("ILA needs an open_clip ViT CLIP with a class token (OpenAI layout), e.g. ViT-B-16-quickgelu")
    size = visual.image_size
    if isinstance(size, (tuple, list)) and size[0] != size[1]:
        raise ValueError(f"ILA supports square inputs only; the CLIP was built for {tuple(size)}")
    if num_frames < 2:
        raise ValueError(f"ILA aligns adjacent frames; num_frames must be >= 2, got {num_frames}")


class ILAModel(VideoModel):
    """ILA for Kinetics-400 (official ``master``): ILA blocks in every CLIP block + MIT + prompt generator.

    ``classify`` returns ``exp(logit_scale) * cos(v_b, t_bk)`` with ``t_bk = c_k + alpha * G(c_k, V_b)``,
    exactly as the official forward. ``training_forward`` adds the sum of the per-block alignment losses
    (weight 1) to the classification loss. Inputs use ImageNet mean/std (spec §2), not CLIP's.

    Args:
        clip: the OpenAI-layout CLIP backbone (frozen here).
        num_frames: ``T`` (fixed by the MIT positional embedding and the point head).
        options: the method options (:class:`~chronoclip_ila.options.ILAOptions`, variant ``k400``).
    """

    input_mean = IMAGENET_MEAN
    input_std = IMAGENET_STD

    def __init__(self, clip: CLIP, num_frames: int, options: ILAOptions) -> None:
        super().__init__(num_frames)
        _check_backbone(clip, num_frames)
        self.options = options
        self.clip = clip
        self.clip.requires_grad_(False)
        width = clip.visual.conv1.out_channels
        embed_dim = clip.text_projection.shape[1]
        self.blocks = _build_blocks(clip, num_frames, "k400", options.drop_path_rate, options.alignment_channels)
        self.mit = MultiframeIntegrationTransformer(num_frames, embed_dim, options.mit_layers)
        self.prompts_generator = VideoSpecificPrompt(embed_dim, options.prompt_layers, options.prompt_alpha)
        self.prompts_visual_ln = nn.LayerNorm(width)
        # (d, E) used as x @ P, initialised N(0, 1) as the official code (and never trained there)
        self.prompts_visual_proj = nn.Parameter(torch.randn(width, embed_dim))
        for module in (self.prompts_generator, self.prompts_visual_ln):
            module.requires_grad_(False)
        self.prompts_visual_proj.requires_grad_(False)
        self.optim = options.optim
        self.jitter_delta = JITTER_DELTA
        self.text_cache = TextFeatureCache()

    # -- schedule hook ------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """Official jitter decay (the trainer calls this every epoch): delta = 0.2 until epoch 29, halved at
        the start of each epoch from 30 (:func:`jitter_delta_at`)."""
        self.jitter_delta = jitter_delta_at(epoch)

    # -- forward pieces -----------------------------------------------------------------------------
    def forward_features(self, video: Tensor) -> dict[str, Any]:
        """Everything the forward computes before the text side.

        Returns:
            ``video`` (B, E) MIT embedding, ``frames`` (B, T, E), ``patches`` (B, N, E) prompt-generator input
            (time-averaged), ``align_losses`` (one scalar per block), ``points`` (one (B, P, 4) per block).
        """
        self.check_video(video)
        b, t = video.shape[:2]
        tokens, losses, points = encode_ila_tokens(
            self.clip, self.blocks, video, self.jitter_delta if self.training else None)
        tokens = tokens.view(b, t, *tokens.shape[1:])
        frames = L.vision_head(self.clip.visual, tokens[:, :, 0])
        # patch tokens for the prompt generator are taken before ln_post (trap 13)
        patches = (self.prompts_visual_ln(tokens[:, :, 1:]) @ self.prompts_visual_proj).mean(dim=1)
        return {"video": self.mit(frames), "frames": frames, "patches": patches, "align_losses": losses,
                "points": points}

    def encode_video(self, video: Tensor) -> Tensor:
        return self.forward_features(video)["video"]

    def encode_class_texts(self, class_texts: Sequence[str]) -> Tensor:
        """(K, E) frozen text features of the bare class texts (encoded under no_grad, as the official model),
        cached by :class:`core.text_cache.TextFeatureCache`."""
        def compute() -> Tensor:
            tokens = _tokenize_strict(class_texts, self.clip.context_length)
            return L.encode_text(self.clip, tokens.to(self.clip.token_embedding.weight.device))
        return self.text_cache.get(class_texts, compute, clip_text_parameters(self.clip), frozen=True)

    def logits(self, features: Mapping[str, Tensor], class_texts: Sequence[str]) -> Tensor:
        """(B, K) logits from :meth:`forward_features` output."""
        video = features["video"]
        text = self.encode_class_texts(class_texts).to(video.dtype)
        text = text.unsqueeze(0).expand(video.shape[0], -1, -1)
        text = text + self.prompts_generator(text, features["patches"])
        # no epsilon in the norms, as the official forward; the head in at least fp32 (bf16 logits tie classes)
        video, text = head_precision(video), head_precision(text)
        video = video / video.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        return torch.einsum("bd,bkd->bk", video, self.clip.logit_scale.exp() * text)

    # -- VideoModel surface -------------------------------------------------------------------------
    def class_texts(self, names: Sequence[str], descriptions: Mapping[str, str] | None = None) -> list[str]:
        """The bare class names (official template ``"{}"``)."""
        return list(names)

    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        return self.logits(self.forward_features(video), class_texts)

    def training_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        features = self.forward_features(batch["video"])
        logits = self.logits(features, batch["class_texts"])
        ce = classification_loss(logits, batch["label"], batch.get("target"))
        align = torch.stack(features["align_losses"]).sum()
        return {"loss": ce + align, "ce": ce.detach(), "align": align.detach(), "logits": logits}

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The official six AdamW groups (decay / no decay for ``message_``, ``temporal_`` and ``mit``).

        Their ``lr_scale`` relative to ``optim.lr`` (official ``TRAIN.LR``, 8e-6) come from
        :class:`~chronoclip_ila.options.OptimConfig`: 62.5, 10 and 50, i.e. the official 5e-4, 8e-5 and 4e-4.
        ``weight_decay`` is the MIT group's decay (``TRAIN.WEIGHT_DECAY``, 0.003).
        """
        return _ila_param_groups(self, weight_decay)


def _ila_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    optim = model.optim
    message, temporal = [], []
    for name, param in model.blocks.named_parameters(prefix="blocks"):
        (temporal if ".temporal_" in name else message).append((name, param))
    groups = _groups(
        {"message": message, "temporal": temporal, "mit": list(model.mit.named_parameters(prefix="mit"))},
        scales={"message": optim.message_lr_scale, "temporal": optim.temporal_lr_scale, "mit": optim.mit_lr_scale},
        decays={"message": optim.message_weight_decay, "temporal": optim.temporal_weight_decay, "mit": weight_decay})
    grouped = {id(p) for g in groups for p in g["params"]}
    stray = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in grouped]
    if stray:
        raise RuntimeError(f"trainable ILA parameters outside the official groups: {stray[:8]}")
    return groups


def _strip_text_tower(clip: CLIP) -> CLIP:
    """Drop the text tower and logit scale (the SSv2 variant has none; its checkpoints hold no text weights)."""
    for name in ("transformer", "token_embedding", "ln_final"):
        delattr(clip, name)
    for name in ("positional_embedding", "text_projection", "logit_scale", "logit_bias"):
        if hasattr(clip, name):
            delattr(clip, name)
    clip.register_buffer("attn_mask", None, persistent=False)
    return clip


class ILASSv2Model(VideoModel):
    """ILA for Something-Something-v2 (paper appendix; official ``SSV2`` branch, spec §11).

    Frozen CLIP vision, ILA blocks with the dense two-conv alignment trunk, MIT, then
    ``LayerNorm -> Dropout(0.5) -> Linear`` on the L2-normalised video embedding. No text tower and no prompt
    branch: ``classify`` takes the class texts only to check their number against the head (the head's row
    order is the label file's).

    Args:
        clip: the OpenAI-layout CLIP backbone; its text tower is dropped.
        num_frames: ``T``.
        num_classes: head outputs (174 for SSv2).
        options: the method options (:class:`~chronoclip_ila.options.ILAOptions`, variant ``ssv2``: its
            ``num_classes`` = head outputs, 174 for SSv2).
    """

    input_mean = IMAGENET_MEAN
    input_std = IMAGENET_STD

    def __init__(self, clip: CLIP, num_frames: int, options: ILAOptions) -> None:
        super().__init__(num_frames)
        _check_backbone(clip, num_frames)
        self.options = options
        num_classes = options.num_classes
        if num_classes is None or num_classes < 1:
            raise ValueError(f"num_classes must be positive (174 for Something-Something-v2), got {num_classes}")
        embed_dim = clip.visual.proj.shape[1]
        self.clip = _strip_text_tower(clip)
        self.clip.requires_grad_(False)
        self.blocks = _build_blocks(clip, num_frames, "ssv2", options.drop_path_rate, options.alignment_channels)
        self.mit = MultiframeIntegrationTransformer(num_frames, embed_dim, options.mit_layers, num_classes=num_classes)
        self.num_classes = num_classes
        self.optim = options.optim
        self.jitter_delta = JITTER_DELTA

    def on_epoch_start(self, epoch: int) -> None:
        """Official jitter decay (see :func:`jitter_delta_at`)."""
        self.jitter_delta = jitter_delta_at(epoch)

    def forward_features(self, video: Tensor) -> dict[str, Any]:
        """``video`` (B, E) MIT embedding, ``frames`` (B, T, E), ``align_losses``, ``points`` (see ILAModel)."""
        self.check_video(video)
        b, t = video.shape[:2]
        tokens, losses, points = encode_ila_tokens(
            self.clip, self.blocks, video, self.jitter_delta if self.training else None)
        frames = L.vision_head(self.clip.visual, tokens[:, 0]).view(b, t, -1)
        return {"video": self.mit(frames), "frames": frames, "align_losses": losses, "points": points}

    def encode_video(self, video: Tensor) -> Tensor:
        return self.forward_features(video)["video"]

    def _check_classes(self, class_texts: Sequence[str]) -> None:
        if len(class_texts) != self.num_classes:
            raise ValueError(f"this SSv2 ILA model has a {self.num_classes}-way linear head but got {len(class_texts)} "
                             f"class texts; pass the label list the head was trained on, in its order")

    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        self._check_classes(class_texts)
        return self.mit.classify_head_logits(self.encode_video(video))

    def training_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        self._check_classes(batch["class_texts"])
        features = self.forward_features(batch["video"])
        logits = self.mit.classify_head_logits(features["video"])
        ce = classification_loss(logits, batch["label"], batch.get("target"))
        align = torch.stack(features["align_losses"]).sum()
        return {"loss": ce + align, "ce": ce.detach(), "align": align.detach(), "logits": logits}

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The same six groups as :meth:`ILAModel.param_groups` (the official optimizer is shared by both branches;
        ``mit`` includes ``classify_head``)."""
        return _ila_param_groups(self, weight_decay)
