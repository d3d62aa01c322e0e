"""Video data: WebDataset shards of real video files, decoding, sampling, transforms, datasets.

Public entry points (the modules hold the details):

* :func:`make_video_loader` (``core.data.loader``): batches of clips from shards, for training or exact
  evaluation across ranks and workers.
* ``chronoclip-shards`` / :func:`write_shards` (``core.data.shard_writer``): folder of videos + list -> shards.
* :func:`synthetic_dataset`, :func:`synthetic_image_captions` (``core.data.synthetic``): the embedded data.
* ``core.data.catalog``: class lists, base/novel partitions, split lists and class descriptions.
* ``core.data.decoders``: the video decoder backends (decord, PyAV, torchcodec; ``data.decoder``).
* ``core.data.sampling`` / ``core.data.transforms``: the reference frame samplers and augmentations,
  batched Mixup/CutMix (:class:`MixupCutmix`).
"""

import importlib
from typing import Any

# Lazy exports (PEP 562): `python -m core.data.shard_writer` must not find its own module already imported by
# this package, and `import core.data.catalog` should not pay for torch, decoders and webdataset.
_EXPORTS = {
    "VideoLoader": "core.data.loader",
    "make_video_loader": "core.data.loader",
    "SAMPLERS": "core.data.sampling",
    "get_sampler": "core.data.sampling",
    "sample_views": "core.data.sampling",
    "ShardOptions": "core.data.shard_writer",
    "write_shards": "core.data.shard_writer",
    "SyntheticDataset": "core.data.synthetic",
    "SyntheticImageCaptions": "core.data.synthetic",
    "SyntheticRecipe": "core.data.synthetic",
    "synthetic_dataset": "core.data.synthetic",
    "synthetic_image_captions": "core.data.synthetic",
    "EvalTransform": "core.data.transforms",
    "MixupCutmix": "core.data.transforms",
    "TrainTransform": "core.data.transforms",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = [
    "SAMPLERS",
    "EvalTransform",
    "MixupCutmix",
    "ShardOptions",
    "SyntheticDataset",
    "SyntheticImageCaptions",
    "SyntheticRecipe",
    "TrainTransform",
    "VideoLoader",
    "get_sampler",
    "make_video_loader",
    "sample_views",
    "synthetic_dataset",
    "synthetic_image_captions",
    "write_shards",
]
