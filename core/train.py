"""``python -m core.train``: train a method with DeepSpeed (one process, ``deepspeed``, or ``torchrun``).

Examples::

    python -m core.train --method vifi                      # embedded default: synthetic data, tiny CLIP
    deepspeed --num_gpus 8 --module core.train --method ila --config zero_shot \\
        --pretrained ViT-B-16.pt --train-shards /data/k400/train --val-shards /data/k400/val
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:PORT -m core.train ...
    python -m core.train --resume runs/ila-20250101-120000   # continue an interrupted run

Every config key can be overridden: ``optim.lr=1e-5`` or ``--optim.lr 1e-5``; ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from core import config as cfg
from core.cli import ArgumentParser

__all__ = ["main"]

logger = logging.getLogger("core.train")


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m core.train", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a chronoclip method with DeepSpeed. With no data arguments it trains on the embedded "
                    "synthetic dataset with a tiny CLIP (minutes on a CPU) and prints base/novel top-1.",
        epilog="config keys (override with key=value or --key value):\n" + cfg.help_text())
    parser.add_argument("--method", help="method name (--list-methods shows the installed ones); default ila, or vifi "
                                         "when chronoclip-ila is not installed")
    parser.add_argument("--config", help="a protocol the method ships (e.g. zero_shot, synthetic) or a YAML path")
    parser.add_argument("--resume", metavar="PATH", help="run directory (or run/checkpoints/step_N) to continue")
    parser.add_argument("--output-dir", help="run directory (default runs/<method>-<timestamp>)")
    parser.add_argument("--model", help="CLIP architecture (clip.model), e.g. ViT-B-16")
    parser.add_argument("--pretrained", help="CLIP weights (clip.pretrained): a file such as ViT-B-16.pt, or an open_clip "
                                             "tag of --model such as openai (Hugging Face hub cache)")
    parser.add_argument("--train-shards", help="training shards (data.train_shards)")
    parser.add_argument("--val-shards", help="validation shards (data.val_shards)")
    parser.add_argument("--class-names", help="class list file (data.class_names)")
    parser.add_argument("--list-methods", action="store_true",
                        help="print the installed methods with their paper and recipes, and exit")
    parser.add_argument("--list-weights", action="store_true",
                        help="--list-methods plus the authors' released checkpoints of each (name, protocol, "
                             "frames, the paper's figure, where to get them), and exit")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    # the deepspeed launcher appends --local_rank=N; the rank is read from the environment instead
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def _resolve(args: argparse.Namespace, rest: Sequence[str]) -> dict:
    pairs = cfg.parse_override_tokens(rest)
    flags = {"--model": args.model, "--pretrained": args.pretrained, "--train-shards": args.train_shards,
             "--val-shards": args.val_shards, "--class-names": args.class_names, "--output-dir": args.output_dir}
    # flag values are strings, not YAML (a path like "on" or "1e5" stays a path)
    pairs = [(cfg.FLAG_KEYS[f], _quoted(v)) for f, v in flags.items() if v is not None] + pairs
    if args.resume and args.config is None:
        from core.training.rundir import RunDir, parse_resume

        saved = parse_resume(args.resume).run
        if not (saved / "config.yaml").is_file():
            raise FileNotFoundError(f"--resume {args.resume}: no config.yaml in the run directory; pass --config too")

        config = cfg.defaults()
        cfg.merge(config, cfg.public(RunDir(saved).saved_config()), where=f" in {saved}/config.yaml")
        if args.method and args.method != config["method"]:
            raise cfg.ConfigError(f"--resume {saved} is a {config['method']!r} run, not {args.method!r}")
        cfg.apply_overrides(config, pairs)
        config["_source"] = f"{saved}/config.yaml"
    else:
        method = args.method
        if method is None and args.config is None and not any(k == "method" for k, _ in pairs):
            method = _default_method()
        config = cfg.resolve_config(method, args.config, pairs)
    cfg.validate(config)
    _check_data_keys(config)
    return config


def _check_data_keys(config: dict) -> None:
    """Data keys that would be ignored are errors (a class list without the shards it names)."""
    data = config["data"]
    ignored = [f"data.{key} given without data.{needs}" for key, needs in
               (("class_names", "train_shards"), ("val_class_names", "val_shards"))
               if data.get(key) and data.get(needs) is None]
    if ignored:
        raise cfg.ConfigError(f"{'; '.join(ignored)}: it would be ignored (without shards the run uses the embedded "
                              f"synthetic dataset); pass the shards too (--train-shards / --val-shards), or drop it")


def _default_method() -> str:
    from core.method import default_method, list_methods

    method = default_method()
    logger.info("no --method given: training %r (installed: %s)", method, ", ".join(list_methods()))
    return method


def _quoted(value: str) -> str:
    import json

    return json.dumps(value)


def _setup_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # DeepSpeed's own INFO chatter repeats per rank; keep its warnings
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)


def _print_summary(summary: dict, run_dir: Path) -> None:
    """The final figures (``summary.json`` holds them in percent), each with its chance level and meaning,
    and where the run directory is."""
    lines = [f"{summary['method']}: {summary['step']} training steps"]
    rows = []
    if summary.get("synthetic"):
        base, novel = summary.get("val_base/classes"), summary.get("val_novel/classes")
        rows = [("top-1, base classes", summary.get("base_top1"), 1 / base if base else None,
                 f"{base} classes trained on, unseen clips"),
                ("top-1, novel classes", summary.get("novel_top1"), 1 / novel if novel else None,
                 f"{novel} held-out colour/shape/motion combinations, never trained on"),
                ("time-reversal pairs", summary.get("reversal_pair_top1"), 0.5,
                 "own class vs its time reversal (moving left/right, growing/shrinking, ...): "
                 "a frame average cannot beat chance")]
        if summary.get("hm") is not None:
            rows.append(("HM of base/novel", summary["hm"], None, "harmonic mean of the two top-1 figures"))
    elif summary.get("val_top1") is not None:
        classes = summary.get("val/classes")
        rows = [("top-1, validation", summary["val_top1"], 1 / classes if classes else None,
                 f"{classes} classes")]
    for label, value, chance, meaning in rows:
        figure = f"{value:6.2f} %" if value is not None else "   n/a  "
        level = f"chance {100 * chance:5.2f} %" if chance is not None else ""
        lines.append(f"  {label:<22} {figure}   {level}   ({meaning})")
    lines.append(f"run directory: {run_dir}  (model.pt, summary.json, metrics.jsonl, train.log; "
                 f"use it with python -m core.predict --checkpoint)")
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run ``core.train`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    0: done; 2: a configuration or input error (one line on stderr, no traceback; ``--debug`` shows it);
    143: stopped by SIGTERM after a checkpoint.
    """
    from core.cli import run_cli

    return run_cli(_main, argv, prog="core.train")


def _main(argv: list[str]) -> int:
    args, rest = _parser().parse_known_args(argv)
    _setup_logging()
    if args.list_methods or args.list_weights:
        from core.weights import method_catalog

        print(method_catalog(weights=args.list_weights))
        return 0
    # bad input raises ValueError / FileNotFoundError / UnknownMethodError: run_cli makes it one line, exit 2
    config = _resolve(args, rest)
    if args.print_config:
        print(cfg.dump_yaml(config), end="")
        return 0

    from core.training.loop import Trainer

    trainer = Trainer(config, resume=args.resume)
    try:
        trainer.setup()
        code = trainer.run()
        if trainer.summary is not None:
            _print_summary(trainer.summary, trainer.run_dir.path)
        trainer.cleanup(wait_for_others=True)
        return code
    finally:
        trainer.cleanup()


if __name__ == "__main__":
    sys.exit(main())
