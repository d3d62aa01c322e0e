"""benchmarks/gpu_check.py: the figures it derives from a run's metrics, and its ``--cpu-smoke`` end to end (slow)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def _load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


gpu_check = _load_gpu_check()


def _rows(losses, rate=10.0, wait=0.05):
    return [{"step": i + 1, "loss": loss, "clips_per_s": rate * (0.5 if i == 0 else 1.0), "data_wait": wait,
             "memory_mb": 100.0 * (i + 1), "nonfinite_total": 0} for i, loss in enumerate(losses)]


def test_training_figures_steady_state_and_loss_trend():
    figures = gpu_check.training_figures(_rows([6.0, 5.9, 5.5, 5.4, 5.0, 4.9]), warmup=1, batch_size=20)
    assert figures["clips_per_s"] == 10.0            # the slow first step is left out
    assert figures["step_s"] == pytest.approx(2.0)   # 20 clips per step at 10 clips/s
    assert figures["data_wait_fraction"] == pytest.approx(0.05)
    assert figures["data_wait_key"] == "data_wait"
    assert figures["loss_falls"] and figures["loss_finite"]
    assert figures["memory_mb_logged"] == 600.0

    rising = gpu_check.training_figures(_rows([5.0, 5.1, 5.2, 5.3]), warmup=1, batch_size=20)
    assert not rising["loss_falls"]
    broken = gpu_check.training_figures(_rows([5.0, float("nan"), 4.0]), warmup=0, batch_size=20)
    assert not broken["loss_finite"] and not broken["loss_falls"]


def test_data_wait_read_from_whichever_key_the_trainer_logs():
    assert gpu_check._wait_fraction({"data_wait_fraction": 0.2}) == (0.2, "data_wait_fraction")
    value, key = gpu_check._wait_fraction({"data_wait_s": 0.5, "step_s": 2.0})
    assert value == pytest.approx(0.25) and key == "data_wait_s/step_s"
    assert gpu_check._wait_fraction({"data_wait": 0.1})[0] == 0.1
    assert gpu_check._wait_fraction({"data_wait": {"fraction": 0.3}})[0] == 0.3
    assert gpu_check._wait_fraction({"loss": 1.0}) == (None, "none")


def test_goals_compare_each_figure_with_the_issue_threshold():
    record = {"train": {"mfu": 0.5, "data_wait_fraction": 0.2, "peak_memory_gb": 30.0, "loss_falls": True},
              "eval": {"agreement": 0.98},
              "probe": {"sdpa": {"calls": 4, "flash": 2, "efficient": 2, "cudnn": 0, "math": 0,
                                 "fused_only_forward": "ok"}}}
    goals = gpu_check.goals("vifi", record, "cuda")
    assert goals["mfu"]["met"] is True
    assert goals["data_wait"]["met"] is False
    assert goals["peak_memory_gb"]["met"] is True
    assert goals["bf16_fp32_agreement"]["met"] is False
    assert goals["sdpa_fused"]["met"] is True
    assert "mfu" not in gpu_check.goals("ila", record, "cuda")           # the MFU goal is for vifi and t2l
    assert gpu_check.goals("vifi", record, "cpu")["peak_memory_gb"]["met"] is None   # RSS is no GPU figure


def test_sdpa_census_tells_fused_kernels_from_the_math_fallback():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(2, 2, 8, 16)
    with gpu_check.sdpa_census() as counts:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
        with sdpa_kernel([SDPBackend.MATH]):
            torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert counts["calls"] == 2
    assert counts["math"] == 1
    assert counts["cpu_flash"] + counts["flash"] + counts["efficient"] == 1
    assert torch.nn.functional.scaled_dot_product_attention.__name__ == "scaled_dot_product_attention"  # restored


def test_clip_file_has_the_openai_layout(tmp_path):
    from core.clip import is_openai_state_dict
    from core.training.backbone import build_backbone

    path = gpu_check.write_clip_file(tmp_path / "clip.pt", "test")
    state = torch.load(path, weights_only=True)
    assert is_openai_state_dict(state)
    assert state["visual.conv1.weight"].dtype == torch.float16
    clip, cfg = build_backbone("test", str(path))    # what core.train does with --pretrained
    assert cfg["quick_gelu"] is True
    assert torch.equal(clip.visual.conv1.weight.half(), state["visual.conv1.weight"])


@pytest.mark.slow
def test_cpu_smoke_writes_the_report(tmp_path):
    """``--cpu-smoke`` for vifi as the GPU machine runs it (shards prepared apart, then ``--shards``): the real
    deepspeed launcher, probe, fp32/bf16 evaluation, JSON + markdown."""
    script, out, shards = str(REPO / "benchmarks" / "gpu_check.py"), tmp_path / "results", tmp_path / "shards"
    done = subprocess.run([sys.executable, script, "--cpu-smoke", "--prepare-shards", str(shards)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (shards / "train" / "manifest.json").is_file()
    done = subprocess.run([sys.executable, script, "--cpu-smoke", "--shards", str(shards), "--methods", "vifi",
                           "--work", str(tmp_path / "work"), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "gpu_check.json").read_text())
    assert result["cpu_smoke"] is True
    for key in ("date", "torch", "deepspeed", "device", "peak_tflops"):
        assert result["environment"][key]
    vifi = result["methods"]["vifi"]
    assert vifi["status"] == "ok"
    assert vifi["command"].startswith("deepspeed --num_gpus 1 --master_port")
    assert vifi["recipe_settings"]["micro_batch_size"] == 4 and vifi["recipe_settings"]["num_frames"] == 16
    train = vifi["train"]
    assert train["steps_logged"] == 2 and train["clips_per_s"] > 0
    assert 0 <= train["data_wait_fraction"] <= 1
    assert train["peak_memory_gb"] > 0 and train["loss_finite"]
    assert all(math.isfinite(v) for v in train["losses"])
    assert vifi["probe"]["flops_per_clip"] > 0 and train["mfu"] > 0
    assert vifi["probe"]["sdpa"]["calls"] > 0
    ev = vifi["eval"]
    assert ev["fp32"]["videos"] == ev["bf16"]["videos"] == result["data"]["val"]["clips"]
    assert 0 <= ev["agreement"] <= 1
    assert set(vifi["goals"]) >= {"mfu", "data_wait", "peak_memory_gb", "bf16_fp32_agreement"}
    table = (out / "gpu_check.md").read_text()
    assert "| vifi |" in table and "torch" in table
