"""TC-CLIP eval forward speed and cost at ViT-B/16, 16 x 224 px, on CPU, against core's ``vifi`` baseline.

    python benchmarks/tcclip_forward.py [--iters 2] [--frames 16] [--classes 4] [--threads N]

Both models get random weights (the cost does not depend on them) and the same clip. Printed:

* clips/s of ``classify`` (batch 1, ``--classes`` class texts), the median of ``--iters`` calls after one
  warm-up call, with the two models' calls interleaved so that load from other processes hits both alike;
  also the process CPU seconds per clip, which a shared machine disturbs much less than wall time.
  TC-CLIP's class features depend on the video (VP), so its text tower runs for every clip; vifi caches its
  text features after the warm-up call;
* GFLOPs per view of ``encode_video`` (one clip) from ``torch.utils.flop_counter.FlopCounterMode`` (through
  ``evaluation.profile.count_flops``), reported as GMACs = FLOPs / 2, the unit of the papers' "GFLOPs";
  counted on the meta device (shapes only, no arithmetic), plus TC-CLIP's text cost per extra class;
* trainable / total parameters.

Runtime about 2 minutes on 2 idle cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import core
from core.clip import build_clip
from evaluation.profile import count_flops


def _build(method: str, frames: int, device: str = "cpu") -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.device(device):
        return core.load_method(method).build(build_clip("ViT-B-16-quickgelu"), num_frames=frames).eval()


def _gmacs(method: str, frames: int) -> tuple[float, float]:
    """(encode_video GMACs per view, GMACs one more class text adds to classify), counted on meta tensors."""
    model = _build(method, frames, "meta")
    video = torch.empty(1, frames, 3, 224, 224, device="meta")
    view = count_flops(lambda: model.encode_video(video)) / 2e9
    one = count_flops(lambda: model.classify(video, ["action number 0"])) / 2e9
    two = count_flops(lambda: model.classify(video, ["action number 0", "action number 1"])) / 2e9
    return view, two - one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=2, help="timed classify calls per model (median is reported)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--classes", type=int, default=4, help="class texts per classify call")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = ("tcclip", "vifi")
    flops = {m: _gmacs(m, args.frames) for m in methods}
    models = {m: _build(m, args.frames) for m in methods}
    video = torch.randn(1, args.frames, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    texts = [f"action number {i}" for i in range(args.classes)]
    wall: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    with torch.inference_mode():
        for m in methods:
            models[m].classify(video, texts)
        for _ in range(args.iters):
            for m in methods:
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                models[m].classify(video, texts)
                wall[m].append(time.perf_counter() - start_wall)
                cpu[m].append(time.process_time() - start_cpu)
    speed = {m: 1.0 / statistics.median(wall[m]) for m in methods}
    cpu_s = {m: statistics.median(cpu[m]) for m in methods}
    for m in methods:
        gmacs, per_class = flops[m]
        trainable = sum(p.numel() for p in models[m].parameters() if p.requires_grad)
        total = sum(p.numel() for p in models[m].parameters())
        print(f"{m:6s} {speed[m]:6.3f} clips/s  {cpu_s[m]:6.1f} CPU s/clip  {gmacs:6.1f} GFLOPs/view (GMACs), text "
              f"{per_class:.2f} GMACs per class  params trainable {trainable:,} / total {total:,}")
    print(f"tcclip / vifi: speed x{speed['tcclip'] / speed['vifi']:.2f} (CPU time x{cpu_s['tcclip'] / cpu_s['vifi']:.2f}), "
          f"GFLOPs x{flops['tcclip'][0] / flops['vifi'][0]:.3f} (ViT-B/16, {args.frames}x224, batch 1, {args.classes} "
          f"classes, {torch.get_num_threads()} threads, CPU fp32)")


if __name__ == "__main__":
    main()
