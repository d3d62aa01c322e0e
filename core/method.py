"""The method plugin interface: ``VideoModel`` (what a method builds) and ``Method`` (how core finds it).

A method package registers one ``Method`` subclass under the entry-point group ``chronoclip.methods``;
core loads only the method asked for, by name. See docs/plugin-interface.md.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, ClassVar

import yaml
from open_clip.model import CLIP
from torch import Tensor, nn

from core.clip import CLIP_MEAN, CLIP_STD
from core.options import OptionsError, build_options

__all__ = ["ENTRY_POINT_GROUP", "Method", "NoOptions", "OptionsError", "UnknownMethodError", "VideoModel",
           "WiseFT", "default_method", "list_methods", "load_method", "load_official"]

ENTRY_POINT_GROUP = "chronoclip.methods"

#: The file in a method's ``config_package`` that holds its test settings (not a recipe), see
#: :meth:`Method.evaluation_settings` and docs/evaluation.md.
EVALUATION_SETTINGS_FILE = "evaluation.yaml"


class VideoModel(nn.Module):
    """Base of every method's model: a video encoder + text side that classifies clips by class text.

    Subclasses implement :meth:`encode_video`, :meth:`classify` and :meth:`training_forward`, and set
    ``num_frames`` (``None`` when any count works) and the input normalisation they were trained with.
    """

    method: ClassVar[str] = "?"
    input_mean: tuple[float, float, float] = CLIP_MEAN
    input_std: tuple[float, float, float] = CLIP_STD

    def __init__(self, num_frames: int | None) -> None:
        super().__init__()
        self.num_frames = num_frames

    # -- what methods implement -------------------------------------------------------------------
    def encode_video(self, video: Tensor) -> Tensor:
        """Video embedding (B, E) of a normalised clip batch (B, T, 3, H, W)."""
        raise NotImplementedError

    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        """Logits (B, C) of ``video`` (B, T, 3, H, W) against ``class_texts``, as the authors' eval code forms them."""
        raise NotImplementedError

    def training_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Loss terms of one training micro-batch.

        Args:
            batch: ``video`` (B, T, 3, H, W), ``label`` (B,) long, optionally ``target`` (B, C) soft targets
                (mixup/cutmix, label smoothing applied), and ``class_texts`` (the C training class texts,
                already in this method's form, see :meth:`class_texts`).

        Returns:
            Every loss term, their total under ``"loss"``, and the ``"logits"`` (B, C) when the method has them.
        """
        raise NotImplementedError

    # -- shared defaults --------------------------------------------------------------------------
    def class_texts(self, names: Sequence[str], descriptions: Mapping[str, str] | None = None) -> list[str]:
        """The texts this method consumes for a class list (default: the names as they are)."""
        return list(names)

    def no_weight_decay(self) -> set[str]:
        """Substrings of parameter names that get no weight decay (besides every tensor with ndim <= 1)."""
        return set()

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW parameter groups over the trainable parameters, each with an ``lr_scale``.

        Every group has ``name``, ``params``, ``weight_decay`` and ``lr_scale``: its LR relative to the recipe's
        ``optim.lr`` (timm / open_clip style), so ``optim.lr`` means the same thing for every method and a
        method's per-module LRs are multiples of it. Core sets ``lr = optim.lr * lr_scale``.

        Default: one decayed group and one without decay (biases, norms, 1-D tensors, and names matching
        :meth:`no_weight_decay`), both at scale 1. Methods whose recipes use per-module LRs override this.
        """
        skip = self.no_weight_decay()
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim <= 1 or any(s in name for s in skip) else decay).append(param)
        groups = [{"name": "decay", "params": decay, "lr_scale": 1.0, "weight_decay": weight_decay},
                  {"name": "no_decay", "params": no_decay, "lr_scale": 1.0, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]

    def on_epoch_start(self, epoch: int) -> None:
        """Called by the trainer before the first step of every training epoch (0-based), also on resume.

        Default: nothing. Methods whose training changes with the epoch (ILA's mask-jitter decay) override it;
        the call must depend on ``epoch`` only, so a resumed run reaches the same state.
        """

    def trainable_parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def check_video(self, video: Tensor) -> None:
        """Raise a clear error for a clip batch of the wrong rank or frame count."""
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"video must be (B, T, 3, H, W); got {tuple(video.shape)}")
        if self.num_frames is not None and video.shape[1] != self.num_frames:
            raise ValueError(f"this {self.method} model takes {self.num_frames} frames per clip; got {video.shape[1]}. "
                             f"Sample {self.num_frames} frames (the count is fixed by the weights)")


class UnknownMethodError(LookupError):
    """Raised for a method name that no installed distribution registers."""


WiseFT = Callable[[VideoModel, Mapping[str, Tensor], float], VideoModel]


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a method that takes none."""


class Method:
    """A method plugin: builds its ``VideoModel``, converts the authors' checkpoints, ships recipes.

    Subclasses set ``name``, ``config_package`` and ``options_class`` and implement :meth:`_build` and
    :meth:`_load_official`. The public :meth:`build` and :meth:`load_official` add the checks every method gets.
    """

    name: ClassVar[str] = "?"
    config_package: ClassVar[str | None] = None
    # The frozen dataclass of the method's options (a recipe's ``method_options``): every option and its
    # default, written once. Core validates ``method_options`` by building it (:meth:`options`).
    options_class: ClassVar[type] = NoOptions
    # Order in which ``python -m core.train`` without ``--method`` picks among the installed methods (lowest
    # first); None: never picked by default.
    default_rank: ClassVar[int | None] = None
    # The method's own WiSE-FT fusion ``wise_ft(finetuned_model, zeroshot_clip_state, alpha) -> model`` (alpha
    # weights the fine-tuned model), set with ``staticmethod``; None: evaluation fuses the CLIP backbone's
    # parameters generically.
    wise_ft: ClassVar[WiseFT | None] = None

    # -- what methods implement -------------------------------------------------------------------
    def _build(self, clip: CLIP, *, num_frames: int, options: Any) -> VideoModel:
        """A new model; ``options`` is an instance of :attr:`options_class`."""
        raise NotImplementedError

    def _load_official(self, path: Path, **options: Any) -> VideoModel:
        raise NotImplementedError(f"method {self.name!r} has no converter for the authors' checkpoints")

    # -- public template methods ------------------------------------------------------------------
    def options(self, values: Mapping[str, Any] | Any = None) -> Any:
        """``values`` (a recipe's ``method_options``) as this method's :attr:`options_class`, checked.

        Raises:
            OptionsError: an unknown option (the message names close matches) or a value of the wrong type.
        """
        return build_options(self.options_class, values if values is not None else {},
                             f"method_options of method {self.name!r}")

    def build(self, clip: CLIP, *, num_frames: int, **options: Any) -> VideoModel:
        """A new model on ``clip`` for clips of ``num_frames`` frames; ``options`` = the recipe's method_options."""
        model = self._build(clip, num_frames=num_frames, options=self.options(options))
        self._validate(model)
        return model

    def load_official(self, path: str | os.PathLike, **options: Any) -> VideoModel:
        """An eval-ready model from the authors' released checkpoint file (architecture read from the weights)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{self.name} checkpoint {str(path)!r} not found; pass the file the authors released")
        _check_keywords(self, self._load_official, options)
        model = self._load_official(path, **options)
        self._validate(model)
        return model.eval()

    def configs(self) -> dict[str, Traversable]:
        """Shipped recipes: protocol name -> YAML resource."""
        if self.config_package is None:
            return {}
        folder = resources.files(self.config_package)
        return {p.name[: -len(".yaml")]: p for p in folder.iterdir()
                if p.name.endswith(".yaml") and p.name != EVALUATION_SETTINGS_FILE}

    def evaluation_settings(self) -> dict[str, Any] | None:
        """The method's test settings per protocol, as its authors' code evaluates: the data file
        ``<config_package>/evaluation.yaml`` (``None`` when the method ships none; core's defaults apply).
        ``core.eval.settings`` reads and checks it; docs/evaluation.md gives the format."""
        if self.config_package is None:
            return None
        file = resources.files(self.config_package) / EVALUATION_SETTINGS_FILE
        return yaml.safe_load(file.read_text()) if file.is_file() else None

    def load_config(self, protocol: str) -> dict[str, Any]:
        """The recipe for ``protocol`` as a dict."""
        found = self.configs()
        if protocol not in found:
            raise ValueError(f"method {self.name!r} has no recipe {protocol!r}; shipped: {sorted(found) or 'none'}")
        return yaml.safe_load(found[protocol].read_text())

    def _validate(self, model: VideoModel) -> None:
        if not isinstance(model, VideoModel):
            raise TypeError(f"method {self.name!r} built a {type(model).__name__}, not a core.VideoModel")
        model.method = self.name


def _check_keywords(method: Method, hook: Any, options: Mapping[str, Any]) -> None:
    """``options`` bind to the keywords of ``hook`` (``_load_official``), or one clear error listing them."""
    params = inspect.signature(hook).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
    unknown = sorted(set(options) - accepted)
    if unknown:
        valid = sorted(accepted - {"self", "path"})
        raise OptionsError(f"load_official options {unknown} are not understood by method {method.name!r}; "
                           f"valid: {valid or 'none'}")


def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found and found[ep.name].value != ep.value:
            raise RuntimeError(f"two installed distributions register method {ep.name!r}: {found[ep.name].value} and "
                               f"{ep.value}; uninstall one")
        found[ep.name] = ep
    return found


def list_methods() -> dict[str, str]:
    """Installed methods: name -> ``distribution version``."""
    out = {}
    for name, ep in sorted(_entry_points().items()):
        dist = ep.dist
        out[name] = f"{dist.name} {dist.version}" if dist is not None else ep.value
    return out


def load_method(name: str) -> Method:
    """The installed method plugin called ``name``.

    Raises:
        UnknownMethodError: no installed distribution registers ``name``; the message lists those that do.
    """
    found = _entry_points()
    if name not in found:
        raise UnknownMethodError(
            f"no method {name!r}; installed: {', '.join(sorted(found)) or 'none'}. "
            f"Install its package, e.g. `pip install ./methods/{name}`.")
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"entry point {name!r} ({found[name].value}) is not a core.Method subclass")
    return cls()


def default_method() -> str:
    """The method ``python -m core.train`` trains without ``--method``: the installed one of lowest
    ``default_rank`` (ILA, then core's ViFi-CLIP baseline)."""
    ranked = []
    for name in _entry_points():
        rank = load_method(name).default_rank
        if rank is not None:
            ranked.append((rank, name))
    if not ranked:
        raise UnknownMethodError(f"no installed method is a default; pass --method (installed: "
                                 f"{', '.join(sorted(_entry_points())) or 'none'})")
    return min(ranked)[1]


def load_official(method: str, path: str | os.PathLike, **options: Any) -> VideoModel:
    """Eval-ready model of ``method`` from any source ``path``: the authors' released file, a released
    checkpoint's registry name (``python -m core.train --list-weights``), or a ``core.train`` run directory
    or its ``model.pt`` (see :func:`core.weights.load_video_model`).

    ``options`` are method-specific (e.g. ``clip=<OpenAI CLIP file>`` or ``clip="openai"`` for TC-CLIP, whose
    files lack the token embedding table).
    """
    from core.weights import load_video_model

    return load_video_model(method, path, **options)[0]
