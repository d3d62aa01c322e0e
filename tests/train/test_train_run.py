"""``core.train.main`` end to end in this process: a tiny run, its files, resume equivalence, evaluation only."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from core.runs import load_run_model
from core.train import main


def _rows(run, event=None):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("event") == event]


def test_tiny_run_writes_a_complete_run_dir(train_cache, tiny_args, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["--method", "vifi", *tiny_args, "schedule.cosine_from=start", "train.max_steps=3",
                 "--output-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "top-1, base classes" in out and "top-1, novel classes" in out and "chance" in out and str(run) in out

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["clip"]["model"] == "test" and config["train"]["max_steps"] == 3
    steps = _rows(run)
    assert [r["step"] for r in steps] == [1, 2, 3]
    # 2 steps per epoch (16 clips / batch 8), warm-up 1 epoch from 0, then cosine of the absolute step over 6
    lr = 1e-4
    expected = [0.0, 1e-6 + 0.5 * (lr - 1e-6) * (1 + torch.cos(torch.tensor(torch.pi * 2 / 6)).item())]
    assert [r["lr"] for r in steps[:2]] == pytest.approx([expected[0], lr / 2])  # steps 0 and 1 of warm-up
    assert steps[2]["lr"] == pytest.approx(expected[1])
    for row in steps:
        assert {"loss", "ce", "clips_per_s", "data_wait", "memory_mb"} <= set(row)
        assert 0 <= row["data_wait"] <= 1 and row["clips_per_s"] > 0
    # checkpoints every 2 steps and at the end, keep 2
    ckpts = run / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == "step_00000003"
    assert sorted(p.name for p in ckpts.glob("step_*")) == ["step_00000002", "step_00000003"]

    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 3 and summary["val_base/samples"] == 192 and summary["val_novel/samples"] == 96
    assert summary["val_base/classes"] == 48 and summary["val_novel/classes"] == 24
    for key in ("base_top1", "novel_top1", "reversal_pair_top1"):
        assert 0.0 <= summary[key] <= 100.0  # percent
    assert summary["peak_memory_mb"] > 0 and summary["memory_kind"] == "cpu_max_rss"

    # model.pt loads without DeepSpeed and classifies as the run's final weights do
    model, info = load_run_model(run)
    assert info["method"] == "vifi" and info["step"] == 3 and len(info["class_names"]) == 48
    ckpt = torch.load(ckpts / "step_00000003" / "mp_rank_00_model_states.pt", weights_only=False)["module"]
    state = model.state_dict()
    assert set(ckpt) == {f"model.{k}" for k in state}
    for key, value in state.items():
        torch.testing.assert_close(value, ckpt[f"model.{key}"], rtol=0, atol=0)


def test_stop_and_resume_equals_an_uninterrupted_run(train_cache, tiny_args, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["--method", "vifi", *tiny_args, "train.max_steps=4", "--output-dir", str(straight)]) == 0
    # stop at step 2 (an epoch boundary), then run the same command again: it resumes from the checkpoint
    assert main(["--method", "vifi", *tiny_args, "train.max_steps=2", "--output-dir", str(resumed)]) == 0
    assert main(["--method", "vifi", *tiny_args, "train.max_steps=4", "--output-dir", str(resumed)]) == 0
    assert _rows(resumed, "resume") == [{"event": "resume", "step": 2,
                                         "checkpoint": f"{resumed}/checkpoints/step_00000002"}]
    a, b = _rows(straight), _rows(resumed)
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        assert ra["lr"] == rb["lr"]
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
    final_a, _ = load_run_model(straight)
    final_b, _ = load_run_model(resumed)
    for (name, x), y in zip(final_a.state_dict().items(), final_b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)


def test_resume_flag_and_config_mismatch(train_cache, tiny_args, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["--method", "vifi", *tiny_args, "train.max_steps=2", "--output-dir", str(run)]) == 0
    # a different learning config in the same directory is refused, naming the difference
    assert main(["--method", "vifi", *tiny_args, "optim.lr=0.5", "--output-dir", str(run)]) == 2
    assert "optim.lr: 0.0001 -> 0.5" in capsys.readouterr().err
    # --resume alone takes the run's own config; a runtime key may change
    assert main(["--resume", str(run), "train.max_steps=3"]) == 0
    assert [r["step"] for r in _rows(run)] == [1, 2, 3]
    assert json.loads((run / "summary.json").read_text())["step"] == 3


def test_frozen_method_only_evaluates(train_cache, tmp_path):
    run = tmp_path / "clip"
    assert main(["--method", "clip", "clip.model=test", "clip.pretrained=null", "--output-dir", str(run)]) == 0
    assert not (run / "checkpoints").exists() and _rows(run) == []
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 0 and summary["val_base/samples"] == 192
    model, info = load_run_model(run)
    assert info["method"] == "clip" and not any(p.requires_grad for p in model.parameters())


def test_user_errors_exit_2(train_cache, tmp_path, capsys):
    assert main(["--method", "nope"]) == 2
    assert "no method 'nope'" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    assert main(["--method", "vifi", "clip.model=test", "clip.pretrained=null", "--output-dir", str(busy)]) == 2
    assert "holds no chronoclip run" in capsys.readouterr().err


def test_deepspeed_steps_equal_a_plain_pytorch_loop(train_cache, tiny_args, tmp_path):
    """The engine (ZeRO 1, fp32, 2 micro-batches per step, clipping at 1.0, warm-up) trains exactly as a
    hand-written AdamW loop on the same batches with loss / accumulation, clip_grad_norm_ and the same LRs."""
    from core import config as cfg
    from core.clip import build_clip
    from core.distributed import WorldInfo
    from core.method import load_method
    from core.training.data import make_train_loader, resolve_data
    from core.training.optim import build_optimizer, checked_param_groups

    run = tmp_path / "run"
    args = [*tiny_args, "train.max_steps=3", "optim.weight_decay=0.05", "optim.grad_clip=1.0"]
    assert main(["--method", "vifi", *args, "--output-dir", str(run)]) == 0
    trained, _ = load_run_model(run)

    config = cfg.resolve_config("vifi", None, cfg.parse_override_tokens(args))
    torch.manual_seed(config["train"]["seed"])
    model = load_method("vifi").build(build_clip("test"), num_frames=8)
    data = resolve_data(config)
    texts = model.class_texts(data.class_names)
    groups = checked_param_groups(model, 1e-4, 0.05)
    optimizer = build_optimizer(groups, lr=1e-4, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.05)
    # 2 steps x 2 micro-batches per epoch: epoch 0, then epoch 1
    batches = (batch for epoch in (0, 1) for batch in make_train_loader(
        data, config, mean=model.input_mean, std=model.input_std, world=WorldInfo(0, 1, 0), epoch=epoch,
        epoch_batches=4, seed=config["train"]["seed"]))
    # the synthetic recipe's schedule: warm-up 1 epoch (2 steps) from 0, then the cosine restarts at the peak
    assert config["schedule"]["cosine_from"] == "warmup_end"
    for lr in (0.0, 5e-5, 1e-4):
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad()
        for _ in range(2):
            batch = next(batches)
            out = model.training_forward({"video": batch["video"], "label": batch["label"], "class_texts": texts})
            (out["loss"] / 2).backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
    for (name, expected), actual in zip(model.state_dict().items(), trained.state_dict().values()):
        # the key third of in_proj_bias has an exactly zero true gradient (softmax ignores it): Adam turns the
        # rounding noise of its gradient into steps of up to lr, so it only agrees to a few lr-sized steps
        atol = 3e-4 if name.endswith("in_proj_bias") else 1e-6
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=atol, msg=name)


def test_diverging_run_skips_then_aborts(train_cache, tiny_args, tmp_path):
    """lr 1e30 turns every weight into +-1e30 after the first step: every later loss is non-finite, each one
    is skipped, and the run stops with a clear message after train.max_nonfinite in a row."""
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match=r"3 non-finite losses in a row at step 1 .*train.max_nonfinite=3"):
        main(["--method", "vifi", *tiny_args, "schedule.warmup_epochs=0", "optim.lr=1e30", "optim.grad_clip=0",
              "train.max_nonfinite=3", "--output-dir", str(run)])
    assert [r["step"] for r in _rows(run)] == [1]  # the one finite step was logged; nothing after it
