"""T2L eval forward speed and cost at ViT-B/16, 8 x 224 px, on CPU, against core's ``vifi`` baseline.

    python benchmarks/t2l_forward.py [--iters 3] [--frames 8] [--threads N]

Both models get random weights (the cost does not depend on them) and the same clip. Printed:

* clips/s of ``classify`` (batch 1, 4 class texts; text features are cached after the warm-up call, so
  this is the video side) for T2L and vifi, and their ratio;
* GFLOPs per view of ``encode_video`` (one 8-frame clip) from ``torch.utils.flop_counter.FlopCounterMode``,
  reported as GMACs = FLOPs / 2, the unit of the papers' "GFLOPs" (the paper gives 102 for T2L);
* trainable / total parameters.

Runtime about 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import torch

import core
from core.clip import build_clip
from evaluation.profile import count_flops, measure_throughput


def _build(method: str, frames: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return core.load_method(method).build(build_clip("ViT-B-16-quickgelu"), num_frames=frames).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3, help="timed classify calls per model (median is reported)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    video = torch.randn(1, args.frames, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    rows = {}
    for method in ("t2l", "vifi"):
        start = time.perf_counter()
        model = _build(method, args.frames)
        gmacs = count_flops(lambda m=model: m.encode_video(video)) / 2e9
        clips_per_s, _, _ = measure_throughput(model, num_frames=args.frames, input_size=224, batch_size=1,
                                               num_classes=4, iters=args.iters, warmup=1)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        rows[method] = (clips_per_s, gmacs, trainable, total)
        print(f"{method:5s} {clips_per_s:6.3f} clips/s  {gmacs:7.1f} GFLOPs/view (GMACs)  "
              f"params trainable {trainable:,} / total {total:,}  ({time.perf_counter() - start:.0f} s)", flush=True)
        del model
    (t2l_speed, t2l_gmacs, *_), (vifi_speed, vifi_gmacs, *_) = rows["t2l"], rows["vifi"]
    print(f"t2l / vifi: speed x{t2l_speed / vifi_speed:.2f}, GFLOPs x{t2l_gmacs / vifi_gmacs:.3f} "
          f"(ViT-B/16, {args.frames}x224, batch 1, {torch.get_num_threads()} threads, CPU fp32)")


if __name__ == "__main__":
    main()
