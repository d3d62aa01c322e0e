"""STAN on an open_clip CLIP: the video encoder, the class-name text side and both tasks' losses.

Paper: Liu, Huang, Li, Feng, Wu, Li, *Revisiting Temporal Modeling for CLIP-based Image-to-Video Knowledge
Transferring*, CVPR 2023. Official code: https://github.com/farewellthree/STAN (read at c9dc7b6), model
``CLIPSimilarity_split`` + ``VITCLIPPretrained_STAN`` + ``CLIPTextPretrained``.

Where chronoclip deliberately differs from that code:

* the CLIP is open_clip's (fused q/k/v) instead of Hugging Face's; the numbers are the same (golden test);
* recognition text features are cached per class list and recomputed when the list changes (the official
  model caches the first batch's features for the whole run, which is the same thing for one dataset);
* ``cls_residue`` and ``patch_3d`` (off in every official config) are not implemented;
* the conv temporal module is the 2023 code's (``Conv3d(D, D, 3)``), missing from the released code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from open_clip.model import CLIP
from torch import Tensor, nn

from chronoclip_stan.branch import MAX_FRAMES, STANBranch
from chronoclip_stan.options import TASKS, STANOptions
from core.clip import layers as L
from core.clip import tokenize
from core.method import VideoModel
from core.objectives import classification_loss, cosine_logits, symmetric_infonce
from core.text_cache import TextFeatureCache, clip_text_parameters

__all__ = ["STANModel", "TASKS"]


class STANModel(VideoModel):
    """CLIP + the STAN branch (``VITCLIPPretrained_STAN``) + CLIP's text tower (``CLIPTextPretrained``).

    Args:
        clip: the open_clip backbone (both towers; the vision trunk is fine-tuned, never modified).
        options: the method options (:class:`~chronoclip_stan.options.STANOptions`).
    """

    def __init__(self, clip: CLIP, options: STANOptions) -> None:
        # Any clip length up to the 64-row time table works; the trained count is the recipe's business.
        super().__init__(num_frames=None)
        if not 0 < options.text_length <= clip.context_length:
            raise ValueError(f"text_length {options.text_length} must be in 1..{clip.context_length} (CLIP's context)")
        self.options = options
        self.clip = clip
        self.branch = STANBranch(clip.visual, depth=options.depth, time_module=options.time_module,
                                 drop_path_rate=options.drop_path_rate)
        self.tau = float(options.tau)
        self.text_length = options.text_length
        self.task = options.task
        self.branch_lr_mult = float(options.branch_lr_mult)
        self.text_cache = TextFeatureCache()
        # Recognition: the official model encodes the class names once under no_grad, so the text tower never
        # trains. CLIP's learned logit_scale is never used (the scale is the fixed 1 / tau).
        self.clip.requires_grad_(True)
        self.clip.logit_scale.requires_grad_(False)
        if self.task == "recognition":
            for module in self.text_modules():
                module.requires_grad_(False)

    # -- pieces ---------------------------------------------------------------------------------------
    def text_modules(self) -> list[nn.Module | nn.Parameter]:
        """The text tower's parts (token/positional embedding, blocks, ln_final, projection)."""
        parts: list[Any] = [self.clip.token_embedding, self.clip.transformer, self.clip.ln_final]
        parts += [p for p in (self.clip.positional_embedding, self.clip.text_projection) if p is not None]
        return parts

    @property
    def logit_scale(self) -> float:
        return 1.0 / self.tau

    # -- video ----------------------------------------------------------------------------------------
    def encode_video(self, video: Tensor) -> Tensor:
        """STAN video embedding.

        Args:
            video: (B, T, 3, H, W) normalised with CLIP's mean/std; T <= 64, H = W = CLIP's input size.

        Returns:
            (B, E) mean over frames of ``proj(ln_post(frame CLS + branch CLS))``; not normalised.
        """
        self.check_video(video)
        b, t = video.shape[:2]
        if t > MAX_FRAMES:
            raise ValueError(f"STAN's time embedding has {MAX_FRAMES} rows; got clips of {t} frames. Sample fewer")
        visual = self.clip.visual
        x = visual.ln_pre(L.embed_patches(visual, video.flatten(0, 1)))       # (B*T, 1+N, D)
        u = None
        for j, block in enumerate(visual.transformer.resblocks):
            x = L.block_forward(block, x)
            k = j - self.branch.first_block
            if k >= 0:  # the branch reads the block output; the CLIP trunk continues unchanged
                u = self.branch.layer(k, self.branch.branch_input(visual, x, u, k, t), t)
        cls = x[:, 0] + u[:, 0].repeat_interleave(t, dim=0)                    # branch CLS into every frame
        return L.vision_head(visual, cls).view(b, t, -1).mean(dim=1)

    # -- text -----------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """(C, text_length) ids: OpenAI BPE padded to 77 (EOT kept on overflow), then the first columns."""
        device = self.clip.token_embedding.weight.device
        return tokenize(list(texts), self.clip.context_length)[:, : self.text_length].to(device)

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """(C, E) un-normalised text embeddings; the EOT (largest id) position is pooled, as HF CLIP does
        with OpenAI's config (a text cut at ``text_length`` pools its largest BPE id instead)."""
        return L.encode_text(self.clip, self.tokenize(texts))

    def class_embeddings(self, class_texts: Sequence[str]) -> Tensor:
        """Class-name text features: cached and gradient-free in recognition, as the official model."""
        # core.text_cache's rule: keyed on the class list and the text side's device, dtype and versions; a
        # cache filled under inference_mode serves a later no_grad evaluation and a training backward alike.
        # Retrieval trains the text tower: with gradients on, the features are encoded every call.
        return self.text_cache.get(class_texts, lambda: self.encode_text(class_texts),
                                   clip_text_parameters(self.clip), frozen=self.task != "retrieval")

    # -- the VideoModel surface -----------------------------------------------------------------------
    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        """(B, C) = ``cos(video, class name) / tau`` (x100): the official recognition logits.

        The official evaluator ranks the plain cosine; the order is the same.
        """
        return cosine_logits(self.encode_video(video), self.class_embeddings(class_texts), self.logit_scale)

    def training_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Recognition: cross-entropy over ``classify``. Retrieval: symmetric InfoNCE over captions.

        Retrieval batches carry ``captions`` (B strings, one per clip); without them each clip's class text
        stands in as its caption (lets the synthetic data exercise the retrieval path).
        """
        if self.task == "retrieval":
            return self.retrieval_forward(batch)
        logits = self.classify(batch["video"], batch["class_texts"])
        loss = classification_loss(logits, batch.get("label"), batch.get("target"))
        return {"loss": loss, "ce": loss.detach(), "logits": logits}

    def retrieval_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``NormSoftmaxLoss``: ``-mean diag log_softmax(S) - mean diag log_softmax(S^T)``, S = cos / tau over the
        batch gathered across ranks. That is the SUM of both directions = 2 x core's ``symmetric_infonce``."""
        captions = batch.get("captions")
        if captions is None:
            if "class_texts" not in batch or "label" not in batch:
                raise ValueError("a retrieval batch needs 'captions' (one string per clip), or 'class_texts' + "
                                 "'label' to use each clip's class text as its caption")
            captions = [batch["class_texts"][i] for i in batch["label"].tolist()]
        video = self.encode_video(batch["video"])
        text = self.encode_text(captions)
        loss = 2.0 * symmetric_infonce(video, text, self.logit_scale)
        logits = cosine_logits(video.detach(), text.detach(), self.logit_scale)
        return {"loss": loss, "nce": loss.detach(), "logits": logits}

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The official mmengine ``paramwise_cfg``: ``norm_decay_mult=0, bias_decay_mult=0,
        custom_keys={'STAN': lr_mult=10}``.

        A custom key short-circuits mmengine's norm/bias rules, so every branch tensor (norms and biases
        included) gets ``lr_scale = branch_lr_mult`` and full decay; CLIP's LayerNorm weights/biases and linear
        biases get no decay; CLIP's class/positional embeddings are decayed.
        """
        norms = {id(p) for m in self.clip.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
        groups: dict[str, list[nn.Parameter]] = {"clip": [], "clip_no_decay": [], "stan": []}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            if name.startswith("branch."):
                groups["stan"].append(param)
            elif id(param) in norms or name.endswith("bias"):
                groups["clip_no_decay"].append(param)
            else:
                groups["clip"].append(param)
        settings = {"clip": (1.0, weight_decay), "clip_no_decay": (1.0, 0.0),
                    "stan": (self.branch_lr_mult, weight_decay)}
        return [{"name": name, "params": params, "lr_scale": settings[name][0], "weight_decay": settings[name][1]}
                for name, params in groups.items() if params]
