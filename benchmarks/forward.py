"""Eval forward speed of every method in fp32 and bf16 (optionally compiled), against the matmul rate of each dtype.

    python benchmarks/forward.py [--method all] [--repeats 5] [--frames 8] [--size 224] [--classes 4]
                                 [--threads 1] [--compile] [--tcclip-attention official|sdpa]
                                 [--official-repo METHOD=PATH ...] [--official-deps DIR]

For every method (clip, vifi, t2l, tcclip, ila, stan) at ViT-B/16 (random weights: the cost does not depend on
them, nothing is downloaded), batch 1, ``--frames`` x ``--size`` px, ``--classes`` class texts, this prints:

* fp32 and bf16 clips/s of ``classify`` (the eval forward that produces the logits; text features that a
  method caches are cached by the warm-up call, TC-CLIP's video-conditioned text runs every call);
* GFLOPs of that call (FLOPs, not MACs; ``torch.utils.flop_counter``: matmuls, convolutions, attention);
* efficiency = GFLOPs x clips/s / the 2048 x 2048 matmul rate of the same dtype, measured in the same run;
* with ``--compile``: bf16 under ``torch.compile`` (clips/s, speed-up over fp32 eager, and the compile time
  apart: the first call's seconds).

Timing: each repeat runs, per method, one matmul probe and one ``classify`` call per dtype, the order of the
dtypes alternating between repeats; the figures are medians over ``--repeats`` and the spread is the
min-max of the per-repeat bf16/fp32 ratio. Times are the process's CPU seconds (``time.process_time``),
which a machine shared with other processes disturbs much less than wall time; at one thread they equal the
wall time of an idle machine. The wall-time ratio is printed too.

``--official-repo METHOD=PATH`` (repeatable; METHOD one of ila, t2l, tcclip, stan, each also in ``--method``):
PATH is a checkout of the authors' repository (github.com/Francis-Rings/ILA branch master, Shahzadnit/T2L,
naver-ai/tc-clip, farewellthree/STAN). ``benchmarks/official_code.py`` imports their model-building code from
it and builds their model from our fp32 model's weights (the method package's ``to_official_state_dict``);
the logits of both are compared in fp32 (max |logit diff|, and that over the largest |logit|: the run stops
if it exceeds 1e-2, since the timing would then compare different models), and the authors' fp32 forward is
timed in the same interleaved loop (an extra line under the method's row: theirs clips/s, ours fp32 / theirs,
ours bf16 / theirs and, with ``--compile``, ours compiled bf16 / theirs; a summary table closes the run).
STAN's code needs the pinned ``transformers==4.35.0`` and a ``huggingface_hub`` < 1.0 (open_clip's is newer):
install them into a folder of their own and pass ``--official-deps DIR`` (command in ``official_code.py``).

Runtime at one thread: about 1-2 minutes per method and 5 repeats on an idle core, plus compile time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from official_code import OFFICIAL, OfficialCodeError, build_official, check_checkout  # benchmarks/official_code.py
from torch import nn

import core
from core.clip import build_clip
from core.precision import compile_module
from evaluation.profile import count_flops

METHODS = ("clip", "vifi", "t2l", "tcclip", "ila", "stan")
MATMUL_SIZE = 2048


def _build(method: str, frames: int, tcclip_attention: str) -> nn.Module:
    torch.manual_seed(0)
    options = {"attention": tcclip_attention} if method == "tcclip" else {}
    return core.load_method(method).build(build_clip("ViT-B-16-quickgelu"), num_frames=frames, **options).eval()


def _matmul_probe(dtype: torch.dtype) -> Callable[[], float]:
    """A closure that times one 2048 x 2048 matmul in ``dtype`` and returns its GFLOP/s (CPU time)."""
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(dtype)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE).to(dtype)
    a @ b

    def probe() -> float:
        start = time.process_time()
        a @ b
        return 2 * MATMUL_SIZE**3 / max(time.process_time() - start, 1e-9) / 1e9
    return probe


class _Classify(nn.Module):
    """``classify`` on fixed class texts as a module forward (what ``torch.compile`` compiles)."""

    def __init__(self, model: nn.Module, texts: list[str]) -> None:
        super().__init__()
        self.model, self.texts = model, texts

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model.classify(video, self.texts)


@dataclass
class Variant:
    """One timed forward: a callable on the video, its dtype, and what was measured."""

    name: str
    dtype: torch.dtype
    run: Callable[[torch.Tensor], torch.Tensor]
    compile_s: float = 0.0
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    def time_once(self, video: torch.Tensor) -> None:
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        self.run(video.to(self.dtype))
        self.cpu.append(time.process_time() - start_cpu)
        self.wall.append(time.perf_counter() - start_wall)

    @property
    def clips_per_s(self) -> float:
        return 1.0 / statistics.median(self.cpu)


# -- main ----------------------------------------------------------------------------------------------------
def _bench_method(method: str, args: argparse.Namespace, texts: list[str]) -> dict:
    start = time.perf_counter()
    model32 = _build(method, args.frames, args.tcclip_attention)
    model16 = _build(method, args.frames, args.tcclip_attention).to(torch.bfloat16)
    video = torch.randn(1, args.frames, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    variants = [Variant("fp32", torch.float32, lambda v: model32.classify(v, texts)),
                Variant("bf16", torch.bfloat16, lambda v: model16.classify(v, texts))]
    official = None
    with torch.inference_mode():
        for variant in variants:
            variant.run(video.to(variant.dtype))  # warm-up; fills text caches
        gflops = count_flops(lambda: model16.classify(video.bfloat16(), texts)) / 1e9
        if method in args.official_repo:
            official, agreement = _official_variant(method, args, model32, video, texts)
            variants.append(official)
        if args.compile:
            wrapped = _Classify(model16, texts)
            try:
                compiled, seconds = compile_module(wrapped, warmup=lambda m: m(video.bfloat16()))
            except Exception as error:  # noqa: BLE001  (the row says "compile failed"; the other figures stand)
                print(f"  {method}: torch.compile failed: {error!r}"[:400], flush=True)
            else:
                variants.append(Variant("bf16+compile", torch.bfloat16, compiled, compile_s=seconds))
        probes = {torch.float32: _matmul_probe(torch.float32), torch.bfloat16: _matmul_probe(torch.bfloat16)}
        rates: dict[torch.dtype, list[float]] = {torch.float32: [], torch.bfloat16: []}
        ratios = []
        for repeat in range(args.repeats):
            order = variants if repeat % 2 == 0 else variants[::-1]
            for variant in order:
                if variant.name in ("fp32", "bf16"):
                    rates[variant.dtype].append(probes[variant.dtype]())
                variant.time_once(video)
            ratios.append(variants[0].cpu[-1] / variants[1].cpu[-1])
    by_name = {v.name: v for v in variants}
    rate = {dtype: statistics.median(r) for dtype, r in rates.items()}
    fp32, bf16 = by_name["fp32"], by_name["bf16"]
    row = {
        "method": method, "gflops": gflops,
        "fp32": fp32.clips_per_s, "bf16": bf16.clips_per_s,
        "speedup": bf16.clips_per_s / fp32.clips_per_s, "spread": (min(ratios), max(ratios)),
        "wall_speedup": statistics.median(fp32.wall) / statistics.median(bf16.wall),
        "eff32": gflops * fp32.clips_per_s / rate[torch.float32],
        "eff16": gflops * bf16.clips_per_s / rate[torch.bfloat16],
        "rate32": rate[torch.float32], "rate16": rate[torch.bfloat16],
        "seconds": time.perf_counter() - start,
    }
    if "bf16+compile" in by_name:
        compiled = by_name["bf16+compile"]
        row.update(compiled=compiled.clips_per_s, compiled_speedup=compiled.clips_per_s / fp32.clips_per_s,
                   compile_s=compiled.compile_s, eff16c=gflops * compiled.clips_per_s / rate[torch.bfloat16])
    if official is not None:
        row.update(official=official.clips_per_s, vs_official=bf16.clips_per_s / official.clips_per_s,
                   fp32_vs_official=fp32.clips_per_s / official.clips_per_s, **agreement)
        if "compiled" in row:
            row["compiled_vs_official"] = row["compiled"] / official.clips_per_s
    return row


AGREEMENT_TOLERANCE = 1e-2  # max |logit diff| / max |logit|, fp32 against fp32


def _official_variant(method: str, args: argparse.Namespace, model32: nn.Module, video: torch.Tensor,
                      texts: list[str]) -> tuple[Variant, dict]:
    """The authors' fp32 forward built from ``model32``'s weights, after checking that its logits are ours."""
    try:
        run = build_official(method, args.official_repo[method], model32, args.frames, texts, deps=args.official_deps)
    except OfficialCodeError as error:
        raise SystemExit(str(error)) from error
    theirs, ours = run(video), model32.classify(video, texts)
    diff = (theirs - ours).abs().max().item()
    scale = ours.abs().max().item()
    relative = diff / max(scale, 1e-12)
    print(f"  {method} vs the authors' code (fp32, same weights): max |logit diff| {diff:.2e}, logits up to "
          f"{scale:.3g}: relative {relative:.1e}", flush=True)
    if relative > AGREEMENT_TOLERANCE:
        raise SystemExit(f"the authors' {method} and ours disagree (relative logit difference {relative:.1e} > "
                         f"{AGREEMENT_TOLERANCE}); the timing would compare different models")
    return Variant("official fp32", torch.float32, run), {"agree_diff": diff, "agree_scale": scale,
                                                          "agree_relative": relative}


def _print_row(row: dict, compiled: bool) -> None:
    lo, hi = row["spread"]
    text = (f"{row['method']:7s} {row['gflops']:7.1f} {row['fp32']:8.3f} {row['bf16']:8.3f} "
            f"{row['speedup']:6.2f}x [{lo:.2f}-{hi:.2f}] {row['wall_speedup']:6.2f}x {row['eff32']:6.2f} "
            f"{row['eff16']:6.2f}")
    if compiled:
        text += (f" {row['compiled']:8.3f} {row['compiled_speedup']:6.2f}x {row['eff16c']:6.2f} "
                 f"{row['compile_s']:7.1f}" if "compiled" in row else "  (compile failed)")
    print(text + f"   ({row['seconds']:.0f} s)", flush=True)
    if "official" in row:
        text = (f"{'':7s} authors' code fp32: {row['official']:.3f} clips/s; ours fp32 / theirs = "
                f"{row['fp32_vs_official']:.2f}x; ours bf16 / theirs = {row['vs_official']:.2f}x")
        if "compiled_vs_official" in row:
            text += f"; ours bf16+compile / theirs = {row['compiled_vs_official']:.2f}x"
        print(text, flush=True)


def _print_official_summary(rows: list[dict]) -> None:
    rows = [r for r in rows if "official" in r]
    if not rows:
        return
    compiled = any("compiled_vs_official" in r for r in rows)
    print("\nvs the authors' fp32 code (same weights; agreement = max |logit diff| / max |logit|, fp32):")
    print(f"{'method':7s} {'theirs/s':>8s} {'fp32/them':>9s} {'bf16/them':>9s}" + (f" {'bf16c/them':>10s}" if compiled else "")
          + f" {'max|diff|':>9s} {'relative':>8s}")
    for r in rows:
        text = f"{r['method']:7s} {r['official']:8.3f} {r['fp32_vs_official']:8.2f}x {r['vs_official']:8.2f}x"
        if compiled:
            text += f" {r['compiled_vs_official']:9.2f}x" if "compiled_vs_official" in r else f" {'-':>10s}"
        print(text + f" {r['agree_diff']:9.1e} {r['agree_relative']:8.1e}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="all", help=f"'all' or a comma list of {', '.join(METHODS)}")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed calls per variant (median)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", type=int, default=4, help="class texts per classify call")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--compile", action="store_true", help="also time bf16 under torch.compile")
    parser.add_argument("--tcclip-attention", default="official", choices=("official", "sdpa"),
                        help="TC-CLIP's attention mode (methods/tcclip/README.md, 'Attention modes')")
    parser.add_argument("--official-repo", action="append", default=[], metavar="METHOD=PATH",
                        help=f"a checkout of the authors' code of METHOD ({', '.join(OFFICIAL)}): time it side by "
                             f"side from the same weights; repeat for several methods")
    parser.add_argument("--official-deps", type=Path, default=None, metavar="DIR",
                        help="a folder of the authors' pinned pure-Python packages (STAN: transformers 4.35.0), put "
                             "first on the import path while their code is imported")
    args = parser.parse_args(argv)
    methods = METHODS if args.method == "all" else tuple(m.strip() for m in args.method.split(","))
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)} or 'all'")
    args.official_repo = _official_repos(parser, args.official_repo, methods)
    torch.set_num_threads(args.threads)
    texts = [f"action number {i}" for i in range(args.classes)]
    print(f"ViT-B/16 random weights, {args.frames}x{args.size} px, batch 1, {args.classes} classes, "
          f"{torch.get_num_threads()} thread(s), {args.repeats} interleaved repeats, CPU-time clips/s "
          f"(tcclip attention: {args.tcclip_attention})")
    header = (f"{'method':7s} {'GFLOPs':>7s} {'fp32/s':>8s} {'bf16/s':>8s} {'bf16/fp32 [spread]':>20s} "
              f"{'wall x':>7s} {'eff32':>6s} {'eff16':>6s}")
    if args.compile:
        header += f" {'bf16c/s':>8s} {'c/fp32':>7s} {'eff16c':>6s} {'comp s':>7s}"
    print(header, flush=True)
    rows = []
    for method in methods:
        row = _bench_method(method, args, texts)
        _print_row(row, args.compile)
        rows.append(row)
    r32 = statistics.median(r["rate32"] for r in rows)
    r16 = statistics.median(r["rate16"] for r in rows)
    print(f"matmul {MATMUL_SIZE}^2: fp32 {r32:.0f} GFLOP/s, bf16 {r16:.0f} GFLOP/s (x{r16 / r32:.2f}); "
          f"eff = GFLOPs x clips/s / that rate")
    _print_official_summary(rows)
    return rows


def _official_repos(parser: argparse.ArgumentParser, specs: list[str], methods: tuple[str, ...]) -> dict[str, Path]:
    """``["ila=PATH", ...]`` -> ``{"ila": Path}``, each method with a hook and in the run."""
    repos: dict[str, Path] = {}
    for spec in specs:
        method, sep, path = spec.partition("=")
        method = method.strip()
        if not sep or not path:
            parser.error(f"--official-repo {spec!r}: expected METHOD=PATH, e.g. ila=/src/ILA")
        if method not in OFFICIAL:
            parser.error(f"--official-repo {spec!r}: no hook for {method!r}; there is one for {', '.join(OFFICIAL)}")
        if method not in methods:
            parser.error(f"--official-repo {spec!r}: {method} is not in this run's --method; add it")
        if method in repos:
            parser.error(f"--official-repo names {method} twice")
        try:
            repos[method] = check_checkout(method, Path(path).expanduser())
        except OfficialCodeError as error:
            parser.error(str(error))
    return repos


if __name__ == "__main__":
    main()
