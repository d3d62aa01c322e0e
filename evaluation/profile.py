"""Efficiency figures of a method: parameters, GFLOPs per view, clips/s per view, peak memory.

    python -m evaluation.profile --method t2l --model ViT-B-16 --frames 8
    python -m evaluation.profile --method all --model tiny --frames 8          # every installed method
    python -m evaluation.profile --run runs/ila-xyz                            # a trained model

What is counted:

* **GFLOPs per view** come from ``torch.utils.flop_counter.FlopCounterMode`` over one clip (batch 1)
  through ``encode_video``, the video encoder a view costs. The counter counts matrix products,
  convolutions and attention (2 FLOPs per multiply-add) and skips element-wise ops, norms and softmax.
  The papers' "GFLOPs" tables are MAC counts (fvcore), so the headline ``gflops`` is
  ``FLOPs / 2 / 1e9`` (= GMACs); ``gflops_raw`` is the counter's FLOPs / 1e9.
  The text side is reported apart: ``text_gflops_per_class`` (the cost one more class text adds to
  ``classify``) and ``classify_gflops_1class`` (one clip against one class text, as TC-CLIP's Table 14).
* **clips/s per view**: ``classify(video, texts)`` on a batch of ``--batch-size`` clips against
  ``--num-classes`` class texts, the median of ``--iters`` timed calls after warm-up (so methods that cache text features pay for the
  text tower once, and methods whose text depends on the video, e.g. TC-CLIP's VP, pay per clip).
* **peak memory** on the current device: CUDA ``max_memory_allocated`` (weights + activations) over the
  timed calls; on CPU the process's resident-set high-water mark (``VmHWM``, reset before the timed calls
  through ``/proc/self/clear_refs``), i.e. interpreter + weights + activations.

Bad input (an unknown method or recipe, a checkpoint that is not one, an out-of-range count) is one line on
stderr naming the problem and the fix, exit status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

import core
from core.cli import ArgumentParser, UserError, call_cli, check_device, check_range
from core.clip import list_presets
from core.eval.settings import resolve_num_frames
from core.precision import DTYPES, cast_parameters, dtype_name
from core.text_cache import TextFeatureCache
from evaluation.sources import add_model_arguments, find_clip, input_size_of, load_model, parse_options

__all__ = ["Profile", "count_flops", "gflops_per_view", "main", "measure_throughput", "peak_memory",
           "profile_model"]

FLOPS_UNIT = "GMACs (FLOPs/2), the papers' 'GFLOPs'"


@dataclass
class Profile:
    """One method's efficiency figures (see the module docstring for the definitions)."""

    method: str
    model: str
    num_frames: int
    input_size: int
    params_total: int
    params_trainable: int
    gflops: float
    gflops_raw: float
    classify_gflops_1class: float
    text_gflops_per_class: float
    clips_per_s: float
    batch_size: int
    num_classes: int
    peak_memory_mb: float
    memory_kind: str
    device: str
    dtype: str
    flops_unit: str = FLOPS_UNIT
    compile_s: float | None = None

    def lines(self) -> list[str]:
        """The four figures, human-readable."""
        return [
            f"{self.method} ({self.model}, {self.num_frames}x{self.input_size}px, {self.device}, {self.dtype})",
            f"  parameters   total {self.params_total:,}  trainable {self.params_trainable:,}",
            f"  GFLOPs/view  {self.gflops:.2f} (MACs; raw FLOPs {self.gflops_raw:.2f} G)  "
            f"text +{self.text_gflops_per_class:.3f}/class; classify(1 class) {self.classify_gflops_1class:.2f}",
            f"  clips/s/view {self.clips_per_s:.2f} (batch {self.batch_size}, {self.num_classes} classes"
            + (f"; torch.compile, {self.compile_s:.1f} s compile not included" if self.compile_s is not None else "")
            + ")",
            f"  peak memory  {self.peak_memory_mb:.1f} MB ({self.memory_kind})",
        ]


def count_flops(fn: Callable[[], Any]) -> int:
    """Total FLOPs torch's ``FlopCounterMode`` records while running ``fn()`` (no gradient)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn()
    return int(counter.get_total_flops())


def _dummy_video(batch: int, frames: int, size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, frames, 3, size, size, generator=generator).to(device=device, dtype=dtype)


def _class_texts(count: int) -> list[str]:
    return [f"action number {i}" for i in range(count)]


def _clear_text_caches(model: nn.Module) -> None:
    # Class-text features cached between calls (core.text_cache.TextFeatureCache, one per model) must be
    # recomputed when FLOPs are counted, otherwise the text tower is silently missing from the count.
    for module in model.modules():
        if isinstance(module, TextFeatureCache):
            module.clear()


def gflops_per_view(model: nn.Module, *, num_frames: int, input_size: int | None = None,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """FLOP counts of one view (one clip of ``num_frames`` frames, batch 1).

    Returns:
        ``gflops`` (video encoder, GMACs), ``gflops_raw`` (video encoder, GFLOPs),
        ``classify_gflops_1class`` and ``text_gflops_per_class`` (GMACs).
    """
    device = torch.device(device)
    size = input_size or input_size_of(model)
    video = _dummy_video(1, num_frames, size, device, dtype)
    video_flops = count_flops(lambda: model.encode_video(video))
    _clear_text_caches(model)
    one = count_flops(lambda: model.classify(video, _class_texts(1)))
    _clear_text_caches(model)
    two = count_flops(lambda: model.classify(video, _class_texts(2)))
    _clear_text_caches(model)
    return {"gflops": video_flops / 2e9, "gflops_raw": video_flops / 1e9,
            "classify_gflops_1class": one / 2e9, "text_gflops_per_class": max(two - one, 0) / 2e9}


def _read_hwm_kb() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class peak_memory:  # noqa: N801 - used as a context manager like torch's own lowercase helpers
    """Context manager measuring peak memory on ``device``: ``with peak_memory(dev) as mem: ...; mem.mb``."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.mb = math.nan
        self.kind = ""

    def __enter__(self) -> peak_memory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda max_memory_allocated"
        else:
            self.kind = "cpu process RSS high-water mark" if _reset_hwm() else "cpu process peak RSS (since start)"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        hwm = _read_hwm_kb()
        if hwm is None:
            import resource

            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
        self.mb = hwm / 1024


def measure_throughput(model: nn.Module, *, num_frames: int, input_size: int | None = None, batch_size: int = 1,
                       num_classes: int = 400, iters: int = 5, warmup: int = 2, device: torch.device | str = "cpu",
                       dtype: torch.dtype = torch.float32) -> tuple[float, float, str]:
    """Clips per second of ``classify`` (one view per clip) and the peak memory over the timed calls.

    Returns:
        ``(clips_per_s, peak_memory_mb, memory_kind)``.
    """
    device = torch.device(device)
    size = input_size or input_size_of(model)
    video = _dummy_video(batch_size, num_frames, size, device, dtype)
    texts = _class_texts(num_classes)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            model.classify(video, texts)
        sync()
        times = []
        with peak_memory(device) as mem:
            for _ in range(iters):
                start = time.perf_counter()
                model.classify(video, texts)
                sync()
                times.append(time.perf_counter() - start)
    # The median call, not the mean: on a shared machine one call stalled by another process would
    # otherwise dominate the figure.
    return batch_size / statistics.median(times), mem.mb, mem.kind


class _Compiled(nn.Module):
    """``classify`` through ``torch.compile`` (``--compile``); everything else from the original model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        return self.model.classify(video, class_texts)

    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        return self.__dict__["compiled"](video, class_texts)


def profile_model(model: nn.Module, *, method: str, model_name: str, num_frames: int, input_size: int | None = None,
                  batch_size: int = 1, num_classes: int = 400, iters: int = 5, warmup: int = 2,
                  device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                  compile: bool = False) -> Profile:
    """All four figures for ``model`` (moved to ``device``/``dtype`` and put in eval mode).

    With ``compile``, ``classify`` runs through ``torch.compile`` for the clips/s figure; the compile (one
    call on the timed input) is measured apart as ``compile_s`` and not in the steady-state clips/s.
    """
    device = torch.device(device)
    model = cast_parameters(model, dtype, device).eval()
    size = input_size or input_size_of(model)
    flops = gflops_per_view(model, num_frames=num_frames, input_size=size, device=device, dtype=dtype)
    timed, compile_s = model, None
    if compile:
        from core.precision import compile_module

        wrapper = _Compiled(model)
        video = _dummy_video(batch_size, num_frames, size, device, dtype)
        texts = _class_texts(num_classes)

        def first_call(compiled: nn.Module) -> None:
            with torch.inference_mode():
                compiled(video, texts)

        compiled, compile_s = compile_module(wrapper, warmup=first_call)
        wrapper.__dict__["compiled"] = compiled  # not a submodule: it wraps the wrapper itself
        timed = wrapper
    clips_per_s, memory_mb, memory_kind = measure_throughput(
        timed, num_frames=num_frames, input_size=size, batch_size=batch_size, num_classes=num_classes, iters=iters,
        warmup=warmup, device=device, dtype=dtype)
    return Profile(
        method=method, model=model_name, num_frames=num_frames, input_size=size,
        params_total=sum(p.numel() for p in model.parameters()),
        params_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        clips_per_s=clips_per_s, batch_size=batch_size, num_classes=num_classes, peak_memory_mb=memory_mb,
        memory_kind=memory_kind, device=str(device), dtype=dtype_name(dtype), compile_s=compile_s, **flops)


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m evaluation.profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--frames", type=int,
                        help="frames per clip (a view); default: the model's or run's own, else 8 (core.eval.settings)")
    parser.add_argument("--input-size", type=int, help="frame side (default: the CLIP's own)")
    parser.add_argument("--config", help="take method_options from this shipped recipe (protocol name; default "
                        "'synthetic' on the tiny/test presets when the method ships it)")
    parser.add_argument("--batch-size", type=int, default=1, help="clips per timed call (default 1)")
    parser.add_argument("--num-classes", type=int, default=400, help="class texts per timed call (default 400)")
    parser.add_argument("--iters", type=int, default=5, help="timed calls (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up calls (default 2)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    parser.add_argument("--dtype", default="auto", choices=DTYPES,
                        help="precision (default auto: bf16 where the hardware has it, fp32 elsewhere; fp32 on CUDA "
                             "allows TF32)")
    parser.add_argument("--compile", action="store_true",
                        help="time classify through torch.compile (compile time reported apart)")
    parser.add_argument("--json", dest="json_out", help="also write the profiles to this JSON file")
    return parser


def _methods(arg: str | None) -> list[str]:
    if arg in (None, "all"):
        return list(core.list_methods())
    names = [m.strip() for m in arg.split(",") if m.strip()]
    for name in names:
        core.load_method(name)  # an unknown method: UnknownMethodError naming the installed ones
    if not names:
        raise UserError(f"--method {arg!r} names no method; pass one (e.g. vifi), a comma-separated list or all")
    return names


def _check_args(args: argparse.Namespace) -> None:
    """Out-of-range counts and contradictory sources are errors before any model is built (never replaced)."""
    check_range("--frames", args.frames, minimum=1)
    check_range("--input-size", args.input_size, minimum=1)
    check_range("--batch-size", args.batch_size, minimum=1)
    check_range("--num-classes", args.num_classes, minimum=1)
    check_range("--iters", args.iters, minimum=1)
    check_range("--warmup", args.warmup, minimum=0)
    check_device("--device", args.device)
    given = [name for name, on in (("--run", args.run), ("--official", args.official),
                                   ("--untrained", args.untrained)) if on]
    if len(given) > 1:
        raise UserError(f"pass one model source, not {' and '.join(given)}")
    if args.run and not Path(args.run).exists():
        raise UserError(f"--run {args.run} does not exist; pass a core.train run directory or its model.pt")
    if args.official and args.method == "all":
        raise UserError("--official takes one --method (the converter of the file), not all")
    if args.json_out and Path(args.json_out).is_dir():
        raise UserError(f"--json {args.json_out} is a folder; pass a file name")
    if not (args.run or args.official):
        methods = _methods(args.method)
        if args.config is not None:
            missing = [m for m in methods if args.config not in core.load_method(m).configs()]
            if missing:
                raise UserError(f"--config {args.config!r}: {', '.join(missing)} ship(s) no such recipe; pass one "
                                f"of {', '.join(sorted(core.load_method(missing[0]).configs()))}")
    elif args.method:
        core.load_method(args.method)


def main(argv: Sequence[str] | None = None) -> list[Profile]:
    """CLI entry point; returns the profiles it printed. Bad input: one line on stderr and ``SystemExit(2)``."""
    return call_cli(_main, argv, prog="python -m evaluation.profile")


def _main(argv: list[str]) -> list[Profile]:
    args = _parser().parse_args(argv)
    _check_args(args)
    from core.eval.settings import resolve_eval_dtype

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    profiles: list[Profile] = []
    if args.run or args.official:
        loaded = load_model(run=args.run, official=args.official, method=args.method, clip_file=args.clip_file,
                            options=parse_options(args.option))
        frames, _ = resolve_num_frames(fixed=loaded.model.num_frames, requested=args.frames,
                                       stored=loaded.trained_frames)
        jobs = [(loaded.method, loaded.clip_name or "?", lambda ld=loaded: ld.model, frames,
                 resolve_eval_dtype(args.dtype, device, loaded.run_test))]
    else:
        clip_name = args.clip_model or "ViT-B-16"
        jobs = []
        for name in _methods(args.method):
            options = parse_options(args.option)
            config = args.config
            if config is None and clip_name in list_presets() and "synthetic" in core.load_method(name).configs():
                config = "synthetic"  # the method's options for the small CPU CLIPs (e.g. fewer branch layers)
            if config:
                recipe = core.load_method(name).load_config(config)
                options = {**(recipe.get("method_options") or {}), **options}

            frames, _ = resolve_num_frames(requested=args.frames)

            def build(name: str = name, options: dict = options, frames: int = frames) -> nn.Module:
                return load_model(method=name, untrained=True, clip_model=clip_name, pretrained=args.pretrained,
                                  num_frames=frames, options=options).model

            jobs.append((name, clip_name, build, frames, resolve_eval_dtype(args.dtype, device)))
    for name, clip_name, build, frames, dtype in jobs:
        try:
            model = build()
        except (ValueError, TypeError) as error:
            print(f"{name}: cannot build on {clip_name}: {error}", file=sys.stderr)
            continue
        if find_clip(model) is None and args.input_size is None:
            print(f"note: {name} has no open_clip backbone; using --input-size 224", file=sys.stderr)
        profile = profile_model(
            model, method=name, model_name=clip_name, num_frames=frames, input_size=args.input_size,
            batch_size=args.batch_size, num_classes=args.num_classes, iters=args.iters, warmup=args.warmup,
            device=device, dtype=dtype, compile=args.compile)
        print("\n".join(profile.lines()), flush=True)
        profiles.append(profile)
        del model
    if not profiles:
        raise UserError(f"no model could be built on {jobs[0][1] if jobs else '?'} (the reasons are above); pick "
                        f"another --model or --method")
    if args.json_out:
        from evaluation.report import write_json

        write_json(Path(args.json_out), {"profiles": [asdict(p) for p in profiles]})
    return profiles


if __name__ == "__main__":
    main()
