"""ILA eval forward speed and cost at ViT-B/16, 8 x 224 px, on CPU, against core's ``vifi`` baseline.

    python benchmarks/ila_forward.py [--iters 3] [--frames 8] [--variant k400] [--threads N]

Both models get random weights (the cost does not depend on them) and see the same clip. Printed:

* clips/s of ``classify`` (batch 1, 4 class texts; the frozen class features are cached after the warm-up
  call, but ILA's prompt generator runs per clip and class) for ILA and vifi, and their ratio;
* GFLOPs per view of ``encode_video`` (one clip: CLIP + the 12 ILA blocks + MIT) from
  ``torch.utils.flop_counter.FlopCounterMode`` (``evaluation.profile.count_flops``), reported as
  GMACs = FLOPs / 2, the unit of the papers' "GFLOPs". The paper's Table 1 gives 149 per view for ILA-ViT-B/16
  at 8 frames (295 at 16); Table 2 gives 214 for the SSv2 variant at 8 frames. The counter counts matrix
  products, convolutions and attention, and skips element-wise ops, norms and pooling;
* trainable / total parameters.

Runtime about 1.5-3 minutes on 2 cores (`--threads 1` gives steadier figures on a shared machine).
"""

from __future__ import annotations

import argparse
import time

import torch

import core
from core.clip import build_clip
from evaluation.profile import count_flops, measure_throughput

# Paper GFLOPs per view at ViT-B/16, keyed by (variant, frames).
PAPER_PER_VIEW = {("k400", 8): 149, ("k400", 16): 295, ("ssv2", 8): 214, ("ssv2", 16): 438}


def _build(method: str, frames: int, options: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return core.load_method(method).build(build_clip("ViT-B-16-quickgelu"), num_frames=frames, **options).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=3, help="timed classify calls per model (median is reported)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--variant", default="k400", choices=("k400", "ssv2"))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    video = torch.randn(1, args.frames, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    ila_options = {"variant": args.variant, **({"num_classes": 4} if args.variant == "ssv2" else {})}
    rows = {}
    for method, options in (("ila", ila_options), ("vifi", {})):
        start = time.perf_counter()
        model = _build(method, args.frames, options)
        with torch.inference_mode():
            gmacs = count_flops(lambda m=model: m.encode_video(video)) / 2e9
        clips_per_s, _, _ = measure_throughput(model, num_frames=args.frames, input_size=224, batch_size=1,
                                               num_classes=4, iters=args.iters, warmup=1)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        rows[method] = (clips_per_s, gmacs)
        print(f"{method:5s} {clips_per_s:6.3f} clips/s  {gmacs:7.1f} GFLOPs/view (GMACs)  "
              f"params trainable {trainable:,} / total {total:,}  ({time.perf_counter() - start:.0f} s)", flush=True)
        del model
    (ila_speed, ila_gmacs), (vifi_speed, vifi_gmacs) = rows["ila"], rows["vifi"]
    paper = PAPER_PER_VIEW.get((args.variant, args.frames))
    paper_text = f"; paper {paper} GFLOPs/view" if paper else ""
    print(f"ila / vifi: speed x{ila_speed / vifi_speed:.2f}, GFLOPs x{ila_gmacs / vifi_gmacs:.3f} "
          f"(ViT-B/16, {args.frames}x224, {args.variant}, batch 1, {torch.get_num_threads()} threads, "
          f"CPU fp32{paper_text})")


if __name__ == "__main__":
    main()
