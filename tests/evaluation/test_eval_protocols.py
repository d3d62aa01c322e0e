"""Every protocol end-to-end on the (small) synthetic dataset with tiny untrained models.

The numbers of an untrained model are meaningless; what is checked is that they are consistent:
mean ± std over splits, the HM formula, view aggregation, label subsets, the report files.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.clip import build_clip
from core.eval.engine import classify_views, run_classifier
from evaluation.cli import main
from evaluation.metrics import harmonic_mean, mean_std

COMMON = ["--method", "vifi", "--untrained", "--model", "test", "--frames", "4", "--quiet", "--batch-size", "16"]


def run(protocol, tmp_path, *extra):
    out = tmp_path / protocol
    result = main([protocol, *COMMON, "--output-dir", str(out), *extra])
    report = json.loads((out / "report.json").read_text())
    return result, report, out


def test_zero_shot_mean_std_over_splits_and_wise_ft_row(small_synthetic, tmp_path):
    torch.manual_seed(1)
    clip_file = tmp_path / "zero_shot_clip.pt"
    torch.save(build_clip("test").state_dict(), clip_file)
    result, report, out = run("zero-shot", tmp_path, "--wise-ft", "0.5", "--wise-ft-clip", str(clip_file))
    assert [e["label"] for e in report["entries"]] == ["final", "final + WE"]
    novel = len(small_synthetic.novel_ids)
    for label in ("final", "final + WE"):
        per_split = report["results"][label]
        assert len(per_split) == 3
        top1 = [r["top1"] for r in per_split.values()]
        assert all(r["num_classes"] == round(0.75 * novel) for r in per_split.values())
        target = report["summary"][label]["targets"]["synthetic novel"]
        mean, std = mean_std(top1)
        assert target["top1"]["mean"] == pytest.approx(mean) and target["top1"]["std"] == pytest.approx(std)
        assert report["summary"][label]["all_top1"] == pytest.approx(mean)
    # the ensemble is a different model: its logits, hence some metric, differ from the plain one
    plain = result["results"]["final"]["synthetic novel 1"].predictions.scores
    fused = result["results"]["final + WE"]["synthetic novel 1"].predictions.scores
    assert not torch.allclose(plain, fused)
    markdown = (out / "report.md").read_text()
    assert "| Method | WE | synthetic novel | synthetic novel (top-5) | All (top-1) |" in markdown
    assert "✓ (α=0.5)" in markdown
    assert (out / "confusion_final_synthetic_novel_1.png").stat().st_size > 0
    assert (out / "per_class_final_synthetic_novel_1.png").stat().st_size > 0


def test_base_to_novel_hm_is_harmonic_mean_of_reported_accuracies(small_synthetic, tmp_path):
    _, report, out = run("base-to-novel", tmp_path)
    results = report["results"]["final"]
    assert results["base val"]["num_classes"] == len(small_synthetic.base_ids)
    assert results["novel val"]["num_classes"] == len(small_synthetic.novel_ids)
    assert results["base val"]["num_videos"] == 2 * len(small_synthetic.base_ids)
    avg = report["summary"]["average"]["final"]
    assert avg["base"]["mean"] == pytest.approx(results["base val"]["top1"])
    assert avg["hm"] == pytest.approx(harmonic_mean(results["base val"]["top1"], results["novel val"]["top1"]))
    assert 0.0 <= results["novel val"]["reversal_pair_accuracy"] <= 100.0
    assert "synthetic HM" in (out / "report.md").read_text()


def test_few_shot_reports_its_shot_column(small_synthetic, tmp_path):
    _, report, out = run("few-shot", tmp_path, "--key", "2")
    assert report["summary"]["K=2"]["shots"] == "2"
    assert "synthetic base K=2" in (out / "report.md").read_text()


def test_fully_supervised_multi_view_counts_and_settings(small_synthetic, tmp_path):
    _, report, out = run("fully-supervised", tmp_path, "--views", "2x3", "--aggregation", "softmax_mean")
    settings = report["entries"][0]["settings"]
    assert (settings["clips"], settings["crops"], settings["aggregation"]) == (2, 3, "softmax_mean")
    assert settings["origin"]["views"] == "command line"
    assert report["summary"]["final"]["views"] == "2x3"
    assert "| vifi (final) | 4 | 2×3 |" in (out / "report.md").read_text()


def test_run_classifier_aggregates_exactly_the_per_view_logits(small_synthetic):
    from core.data.loader import make_video_loader
    from evaluation.sources import build_untrained

    torch.manual_seed(0)
    model = build_untrained("vifi", clip="test", num_frames=4)
    split = small_synthetic.splits["val_novel"]
    loader = make_video_loader(split.pattern, train=False, num_frames=4, input_size=32, mean=model.input_mean,
                               std=model.input_std, batch_size=5, sampling="segment", views=(2, 3), seed=3)
    keep = {0: 0, 2: 1, 3: 2}  # evaluate 3 of the classes, relabelled
    texts = model.class_texts([split.class_names[i] for i in keep])
    preds = run_classifier(model, loader, texts, aggregation="softmax_sum", label_map=keep, keep_view_logits=True)
    assert preds.num_views == 6 and len(preds) == 2 * len(keep)
    assert sorted(set(preds.labels.tolist())) == [0, 1, 2]
    assert torch.allclose(preds.scores, preds.view_logits.softmax(-1).sum(1))
    # views through the batched path equal classify() on each view alone
    batch = next(iter(loader))
    with torch.inference_mode():
        views = classify_views(model, batch["video"], texts)
        alone = model.classify(batch["video"][:, 4], texts)
    assert torch.allclose(views[:, 4], alone, atol=1e-5)


def test_untrained_flag_needs_a_method(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # bad input: one line, exit 2 (tests/evaluation/*bad_input*)
        main(["fully-supervised", "--untrained", "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "--untrained needs --method" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--untrained needs --method"):  # --debug: the exception itself
        main(["fully-supervised", "--untrained", "--output-dir", str(tmp_path), "--debug"])


def test_frames_override_refused_for_models_with_fixed_frames():
    from core.eval.settings import resolve_settings

    with pytest.raises(ValueError, match="takes 8 frames per clip"):
        resolve_settings("t2l", "zero-shot", model_frames=8, overrides={"frames": 16})
    from core.eval.settings import RunTestSettings

    s = resolve_settings("tcclip", "fully-supervised", model_frames=None, run=RunTestSettings(frames=8),
                         overrides={"frames": None})
    assert (s.frames, s.clips, s.crops, s.aggregation) == (8, 4, 3, "softmax_sum")
    assert s.origin["frames"] == "the run (model.pt)"
    assert not math.isnan(s.views)
