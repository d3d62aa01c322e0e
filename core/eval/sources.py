"""Where an evaluated model comes from: a finished run, the authors' checkpoint, zero-shot CLIP, or a fresh build.

Every command (``python -m evaluation`` protocols, ``compare``, ``evaluation.profile``, ``core.predict``)
accepts the same sources:

* ``--run PATH``: a run directory of ``core.train`` or its consolidated ``model.pt`` (``core.runs``);
* ``--official PATH|NAME [--method M] [--clip FILE] [--option k=v ...]``: the authors' released checkpoint,
  converted by the method's ``load_official`` (``--clip`` is passed as ``clip=`` for methods whose files
  lack CLIP weights, e.g. TC-CLIP); a registry name (``python -m core.train --list-weights``) names its method,
  and a run's ``model.pt`` is loaded as a run;
* ``--method clip --pretrained FILE [--model ViT-B-16]``: zero-shot CLIP from OpenAI's (or an open_clip) file;
* ``--method M --model NAME [--pretrained FILE] --untrained``: a freshly built model (random new modules on
  the given CLIP); useful for profiling and for smoke tests on the tiny presets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from open_clip.model import CLIP
from torch import nn

import core
from core.clip import build_clip
from core.eval.settings import DEFAULT_NUM_FRAMES, RunTestSettings
from core.method import VideoModel

__all__ = ["LoadedModel", "build_untrained", "find_clip", "input_size_of", "load_model", "parse_options"]


@dataclass
class LoadedModel:
    """A model ready for evaluation plus what is known about where it came from.

    Attributes:
        model: the eval-mode ``VideoModel``.
        method: installed method name (``clip``, ``vifi``, ``t2l``, ...).
        source: human-readable origin, printed in reports (``run runs/x``, ``official ckpt.pth``, ...).
        config: the run's resolved config when loaded from a run, else ``None``.
        clip_name: CLIP architecture name when known (``ViT-B-16``, ``tiny``).
        clip_pretrained: path of the zero-shot CLIP weights when known (WiSE-FT needs them).
        class_names: the training class names stored with a run, if any.
        options: method options the model was built with.
        descriptions: class name -> description the run trained with (T2L), if any.
        trained_frames: frames per clip the run trained with (stored once, in ``model.pt``).
        run_dir: the run directory, when loaded from a run.
        run_test: how the run tested itself (its validation and ``summary.json``), when loaded from a run.
    """

    model: VideoModel
    method: str
    source: str
    config: dict[str, Any] | None = None
    clip_name: str | None = None
    clip_pretrained: str | None = None
    class_names: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    descriptions: dict[str, str] | None = None
    trained_frames: int | None = None
    run_dir: Path | None = None
    run_test: RunTestSettings | None = None


def find_clip(model: nn.Module) -> CLIP | None:
    """The open_clip ``CLIP`` backbone inside ``model`` (the first one found), or ``None``."""
    if isinstance(model, CLIP):
        return model
    for module in model.modules():
        if isinstance(module, CLIP):
            return module
    return None


def input_size_of(model: nn.Module, default: int = 224) -> int:
    """Frame side length the model's CLIP was built for (``default`` when no CLIP is found)."""
    clip = find_clip(model)
    if clip is None:
        return default
    size = clip.visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict, values parsed as YAML scalars (``3`` -> 3, ``true`` -> True, ``[4, 8]``)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"option {item!r} must look like key=value (e.g. --option num_layers=4)")
        out[key.strip()] = yaml.safe_load(value)
    return out


def build_untrained(
    method: str,
    *,
    clip: str = "tiny",
    pretrained: str | os.PathLike | None = None,
    num_frames: int = DEFAULT_NUM_FRAMES,
    options: Mapping[str, Any] | None = None,
) -> VideoModel:
    """A freshly built ``method`` model on the CLIP ``clip`` (optionally with weights), in eval mode."""
    if options and "num_frames" in options:
        raise ValueError("num_frames is not a method option: pass --frames N")
    backbone = build_clip(clip, pretrained=pretrained) if clip is not None else build_clip(None, pretrained=pretrained)
    model = core.load_method(method).build(backbone, num_frames=num_frames, **dict(options or {}))
    return model.eval()


def _load_run(path: Path) -> LoadedModel:
    from core.runs import load_run_model

    model, info = load_run_model(path)
    config = dict(info.get("config") or {})
    clip_cfg = config.get("clip") or {}
    names = info.get("class_names")
    return LoadedModel(
        model=model.eval(), method=info.get("method") or getattr(model, "method", "?"), source=f"run {path}",
        config=config, clip_name=clip_cfg.get("model"), clip_pretrained=clip_cfg.get("pretrained"),
        class_names=list(names) if names else None, descriptions=info.get("descriptions"),
        options=dict(info.get("method_options") or {}), trained_frames=info.get("num_frames"),
        run_dir=path if path.is_dir() else path.parent, run_test=RunTestSettings.from_run(info))


def load_model(
    *,
    run: str | os.PathLike | None = None,
    official: str | os.PathLike | None = None,
    method: str | None = None,
    clip_model: str | None = None,
    pretrained: str | os.PathLike | None = None,
    clip_file: str | os.PathLike | None = None,
    untrained: bool = False,
    num_frames: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Resolve one model source (see the module docstring); exactly one of them must be given.

    Raises:
        ValueError: no source or several, or a source missing the arguments it needs.
        FileNotFoundError: a named file does not exist.
    """
    options = dict(options or {})
    given = [name for name, on in (("--run", run is not None), ("--official", official is not None),
                                   ("--untrained", untrained)) if on]
    zero_shot = method == "clip" and pretrained is not None and not given
    if len(given) > 1:
        raise ValueError(f"pass one model source, not {' and '.join(given)}")
    if run is not None:
        path = Path(run)
        if not path.exists():
            raise FileNotFoundError(f"run {str(path)!r} not found; pass a core.train run directory or its model.pt")
        return _load_run(path)
    if official is not None:
        from core.weights import describe_source

        kind, said = describe_source(official)  # a run's model.pt, a registry name, or an authors' file
        if said is not None and method is not None and said != method:
            raise ValueError(f"{official} holds a {said!r} model, not {method!r}; pass --method {said} (or omit it)")
        if kind == "run":
            return _load_run(Path(official))
        method = method or said
        if method is None:
            raise ValueError("--official needs --method (which converter reads the file), e.g. --method tcclip")
        if clip_file is not None:
            options.setdefault("clip", str(clip_file))
        model = core.load_official(method, official, **options)
        return LoadedModel(model=model.eval(), method=method, source=f"official {official}",
                           clip_pretrained=str(clip_file) if clip_file else None, options=options)
    if zero_shot or untrained:
        if method is None:
            raise ValueError("--untrained needs --method")
        name = clip_model or ("tiny" if pretrained is None else None)
        model = build_untrained(method, clip=name, pretrained=pretrained, num_frames=num_frames or DEFAULT_NUM_FRAMES,
                                options=options)
        what = "zero-shot CLIP" if zero_shot else "untrained build"
        return LoadedModel(model=model, method=method, source=f"{what} ({name or 'inferred'}"
                           f"{', ' + str(pretrained) if pretrained else ''})", clip_name=name,
                           clip_pretrained=str(pretrained) if pretrained else None, options=options)
    raise ValueError(
        "no model given: pass --run RUN_DIR, --official CKPT --method M, --method clip --pretrained CLIP_FILE, "
        "or --method M --untrained (a fresh build on --model, default tiny)")
