"""STAN eval forward speed and cost at ViT-B/16, 8 x 224 px, on CPU, against core's ``vifi`` baseline.

    python benchmarks/stan_forward.py [--iters 3] [--frames 8] [--depth 4] [--time-module selfattn] [--threads N]

Both models get random weights (the cost does not depend on them) and see the same clip. Printed:

* clips/s of ``classify`` (batch 1, 4 class texts; the class features are cached after the warm-up call, so
  this times the video side) for STAN and vifi, and their ratio;
* GFLOPs per view of ``encode_video`` (one clip) from ``torch.utils.flop_counter.FlopCounterMode``, reported
  as GMACs = FLOPs / 2, the unit of the papers' "GFLOPs". The paper's Table 4 gives 593 for 3 views of
  STAN-self B/16 at 8 frames (198 per view; K = 6 on SSv2: 688 / 3 = 229; 16 frames: 1187 / 3 = 396);
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

# Paper GFLOPs per view (3-view totals / 3), ViT-B/16, keyed by (time module, depth, frames).
PAPER_PER_VIEW = {("selfattn", 4, 8): 593 / 3, ("selfattn", 4, 16): 1187 / 3, ("conv", 4, 8): 714 / 3,
                  ("selfattn", 6, 8): 688 / 3, ("selfattn", 6, 16): 1376 / 3, ("conv", 6, 8): 845 / 3}


def _build(method: str, frames: int, options: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return core.load_method(method).build(build_clip("ViT-B-16-quickgelu"), num_frames=frames, **options).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3, help="timed classify calls per model (median is reported)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4, help="STAN branch layers K (paper: 4; 6 on SSv2)")
    parser.add_argument("--time-module", default="selfattn", choices=("selfattn", "conv"))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    video = torch.randn(1, args.frames, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    rows = {}
    for method, options in (("stan", {"depth": args.depth, "time_module": args.time_module}), ("vifi", {})):
        start = time.perf_counter()
        model = _build(method, args.frames, options)
        gmacs = count_flops(lambda m=model: m.encode_video(video)) / 2e9
        clips_per_s, _, _ = measure_throughput(model, num_frames=args.frames, input_size=224, batch_size=1,
                                               num_classes=4, iters=args.iters, warmup=1)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        rows[method] = (clips_per_s, gmacs)
        print(f"{method:5s} {clips_per_s:6.3f} clips/s  {gmacs:7.1f} GFLOPs/view (GMACs)  "
              f"params trainable {trainable:,} / total {total:,}  ({time.perf_counter() - start:.0f} s)", flush=True)
        del model
    (stan_speed, stan_gmacs), (vifi_speed, vifi_gmacs) = rows["stan"], rows["vifi"]
    paper = PAPER_PER_VIEW.get((args.time_module, args.depth, args.frames))
    paper_text = f"; paper {paper:.0f} GFLOPs/view" if paper else ""
    print(f"stan / vifi: speed x{stan_speed / vifi_speed:.2f}, GFLOPs x{stan_gmacs / vifi_gmacs:.3f} "
          f"(ViT-B/16, {args.frames}x224, K={args.depth} {args.time_module}, batch 1, {torch.get_num_threads()} "
          f"threads, CPU fp32{paper_text})")


if __name__ == "__main__":
    main()
