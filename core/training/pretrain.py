"""Contrastive pretraining of a small CLIP preset on the synthetic image-caption pairs (the embedded default).

Methods that freeze CLIP (T2L, ILA) learn nothing on a random CLIP, so the embedded default run first
gives its ``tiny`` CLIP what OpenAI's weights give a real run: an image tower and a text tower that agree
on appearance ("a red circle"). Motion words never occur in the captions, so telling "moving left" from
"moving right" stays the video method's job.

The result is cached under ``$CHRONOCLIP_CACHE/pretrained/<preset>-<recipe hash>.pt`` (an open_clip state
dict that ``core.clip.build_clip(preset, pretrained=path)`` loads), built once under a file lock so
concurrent ranks and runs share one copy. This is a plain single-process PyTorch loop: it is a fixture
builder for the default run, not the trainer (``core.train`` trains methods through DeepSpeed).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.clip import CLIP_MEAN, CLIP_STD, build_clip, tokenize, trim_padding
from core.clip import layers as L
from core.config import config_digest
from core.io import atomic_torch_save, file_lock
from core.objectives import symmetric_infonce

__all__ = ["PretrainRecipe", "pretrained_clip_path", "weights_digest"]

logger = logging.getLogger(__name__)

# Two threads, always: 1.5x faster than one on a 2-core machine, and a fixed count keeps the bytes fixed (a
# 1-core machine runs both threads on its core, with the same result).
PRETRAIN_THREADS = 2
PRETRAIN_VERSION = 4  # bump when the loop or the layers it runs change: part of the cache key

# weights_digest of the default recipe's weights (torch 2.x on x86-64 CPUs with AVX-512); a different digest means
# the quick-start numbers will not reproduce exactly. Update it when the recipe, the data, the loop or the layers
# change (version 4: two threads; the synthetic world of bars, circles and triangles; the same bytes from two
# fresh builds here).
EXPECTED_DIGEST = "2e83343ed47f71cda5f585816e37bc151ae81bb4068ba9f29cff29cff13a1846"


@dataclass(frozen=True)
class PretrainRecipe:
    """Everything that determines the pretrained weights (hashed into the cache file name)."""

    preset: str = "tiny"
    num_images: int = 2000
    held_out: int = 200
    steps: int = 500
    batch_size: int = 64
    lr: float = 1.0e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    seed: int = 0

    def digest(self) -> str:
        from core.data.synthetic import SyntheticRecipe

        return config_digest({**asdict(self), "version": PRETRAIN_VERSION, "data": SyntheticRecipe().digest()})


def _cache_dir() -> Path:
    from core.data.synthetic import cache_root

    return cache_root() / "pretrained"


def pretrained_clip_path(recipe: PretrainRecipe | None = None) -> Path:
    """The cached pretrained weights of ``recipe`` (default: the ``tiny`` preset), built on first use.

    Concurrent callers (ranks, runs) wait on a file lock while one of them trains (a few minutes on 2 cores).
    """
    recipe = recipe or PretrainRecipe()
    path = _cache_dir() / f"{recipe.preset}-{recipe.digest()}.pt"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_suffix(".lock")):
        if not path.is_file():
            logger.info("pretraining the %s CLIP on the synthetic image-caption pairs (once; cached in %s)",
                        recipe.preset, path)
            state = _pretrain(recipe)
            digest = weights_digest(state)
            if recipe == PretrainRecipe() and EXPECTED_DIGEST and digest != EXPECTED_DIGEST:
                logger.warning("the pretrained %s CLIP has weights digest %s, not the reference %s (another torch "
                               "build or CPU instruction set): quick-start numbers may differ slightly",
                               recipe.preset, digest[:16], EXPECTED_DIGEST[:16])
            atomic_torch_save(state, path)
    return path


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and raw tensor bytes, in key order (not of the pickle)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _images_as_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> CLIP-normalised float (N, 3, size, size)."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _trimmed_tokens(captions: list[str], context_length: int) -> torch.Tensor:
    return trim_padding(tokenize(captions, context_length))


@contextlib.contextmanager
def _deterministic_cpu() -> Iterator[None]:
    """A fixed number of intra-op threads (``PRETRAIN_THREADS``, whatever the machine's core count) and
    deterministic kernels: float sums then split and run in one fixed order, so the weights are the same
    bytes on every machine with the same instruction set (restored afterwards)."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(PRETRAIN_THREADS)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _pretrain(recipe: PretrainRecipe, *, progress: bool = True) -> dict[str, torch.Tensor]:
    # fork_rng: the caller's global RNG comes back as it was, so a run that pretrains on a cold cache goes on to
    # initialise its model exactly as a run that finds the weights cached (the same numbers on the first run)
    with _deterministic_cpu(), torch.random.fork_rng(devices=[]):
        return _pretrain_loop(recipe, progress=progress)


def _pretrain_loop(recipe: PretrainRecipe, *, progress: bool) -> dict[str, torch.Tensor]:
    from tqdm import tqdm

    from core.data.synthetic import SyntheticRecipe, synthetic_image_captions

    start = time.perf_counter()
    torch.manual_seed(recipe.seed)
    clip = build_clip(recipe.preset)
    data = synthetic_image_captions(num_images=recipe.num_images, seed=recipe.seed)
    images, captions = data.load()
    images = _images_as_input(images, clip.visual.image_size[0] if isinstance(clip.visual.image_size, tuple)
                              else clip.visual.image_size)
    tokens = tokenize(captions, clip.context_length)
    n_train = len(captions) - recipe.held_out
    # The 49408 x W token table is most of the parameters but the captions use a few dozen rows: keeping
    # it at its random init (the transformer learns to read it) cuts the optimizer cost ~5x.
    clip.token_embedding.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in clip.parameters() if p.requires_grad], lr=recipe.lr,
                                  weight_decay=recipe.weight_decay, betas=(0.9, 0.98), eps=1e-6)
    generator = torch.Generator().manual_seed(recipe.seed)
    clip.train()
    loss = torch.tensor(float("nan"))
    bar = tqdm(total=recipe.steps, desc="pretrain tiny CLIP (once)", dynamic_ncols=True, file=sys.stderr,
               disable=not progress)
    for step in range(recipe.steps):
        for group in optimizer.param_groups:
            group["lr"] = _lr(recipe, step)
        idx = torch.randint(0, n_train, (recipe.batch_size,), generator=generator)
        batch_tokens = tokens[idx][:, : int((tokens[idx] != 0).sum(1).max())]
        image_emb = L.encode_frames(clip, images[idx][:, None]).squeeze(1)
        text_emb = L.encode_text(clip, batch_tokens)
        loss = symmetric_infonce(image_emb, text_emb, clip.logit_scale.exp(), gather=False)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, math.log(100))
        bar.update(1)
        if (step + 1) % 25 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    bar.close()
    accuracy = _held_out_accuracy(clip, images[n_train:], captions[n_train:], SyntheticRecipe())
    logger.info("pretrained the %s CLIP in %.0f s: final loss %.3f, held-out colour+shape top-1 %.1f%% (chance %.1f%%)",
                recipe.preset, time.perf_counter() - start, float(loss.detach()), 100 * accuracy[0], 100 * accuracy[1])
    clip.token_embedding.requires_grad_(True)
    return {k: v.detach().clone() for k, v in clip.state_dict().items()}


def _lr(recipe: PretrainRecipe, step: int) -> float:
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return 0.5 * recipe.lr * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def _held_out_accuracy(clip, images: torch.Tensor, captions: list[str], data_recipe) -> tuple[float, float]:
    """Colour + shape top-1 of held-out images, and chance: each image against its own caption with every
    colour x shape in place of its own (the rest of the caption, size and place, is the true one)."""
    clip.eval()
    pairs = [(c, s) for c in data_recipe.colors for s in data_recipe.shapes]
    hits = 0
    image = F.normalize(L.encode_frames(clip, images[:, None]).squeeze(1), dim=-1)
    for i, caption in enumerate(captions):
        own = next((c, s) for c, s in pairs if f" {c} {s}" in caption)
        options = [caption.replace(f" {own[0]} {own[1]}", f" {c} {s}") for c, s in pairs]
        text = F.normalize(L.encode_text(clip, _trimmed_tokens(options, clip.context_length)), dim=-1)
        hits += pairs[int((image[i] @ text.t()).argmax())] == own
    return hits / max(1, len(captions)), 1 / len(pairs)
