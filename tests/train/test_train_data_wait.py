"""The trainer says when the loader starves the model: data wait and step time per logging window, and a warning
that names the knobs; the decoder backend is one config key."""

from __future__ import annotations

import json
import logging

import pytest

from core.train import main
from core.training.loop import DataWaitMonitor


def _rows(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("event") is None]


def test_data_wait_and_step_time_are_logged_and_a_starved_run_warns(train_cache, tiny_args, tmp_path, caplog,
                                                                     capfd):
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="core.train"):
        # data.decoder=pyav: the non-default backend end to end; data_wait_warn=0: any wait is "too much"
        assert main(["--method", "vifi", *tiny_args, "train.max_steps=3", "data.decoder=pyav",
                     "train.data_wait_warn=0", "--output-dir", str(run)]) == 0
    rows = _rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert row["data_wait_s"] > 0 and row["step_s"] > 0
        # the share is the wait over the whole window (wait + step)
        assert row["data_wait"] == pytest.approx(row["data_wait_s"] / (row["data_wait_s"] + row["step_s"]), rel=1e-6)
    assert "wait=" in capfd.readouterr().err  # the progress line shows the share
    warnings = [r.getMessage() for r in caplog.records if "waiting for data took" in r.getMessage()]
    # the first window (worker start-up) is not judged; then one warning, the next not before 10 windows
    assert len(warnings) == 1 and warnings[0].startswith("step 2:")
    for knob in ("data.num_workers (now 0)", "--reencode", "data.decoder=decord|pyav|torchcodec, now pyav"):
        assert knob in warnings[0]


def test_data_wait_monitor_threshold_and_repeat():
    config = {"train": {"data_wait_warn": 0.5}, "data": {"num_workers": 4, "decoder": "decord"}}
    monitor = DataWaitMonitor(config, repeat=3)

    def row(share, step):
        return {"step": step, "data_wait": share, "data_wait_s": share, "step_s": 1 - share}

    judged = [monitor.check(row(share, i + 1)) for i, share in enumerate([0.9, 0.4, 0.6, 0.9, 0.9, 0.7, 0.5])]
    # window 1 is start-up; 2 is under the limit; 3 warns; 4-5 are within `repeat` of it; 6 warns; 7 is not above
    assert judged == [False, False, True, False, False, True, False]
    assert not DataWaitMonitor({**config, "train": {"data_wait_warn": None}}).check(row(1.0, 2))


def test_decoder_and_wait_keys_are_checked(train_cache, capsys):
    assert main(["--method", "vifi", "clip.model=test", "clip.pretrained=null", "data.decoder=ffmpeg"]) == 2
    assert "data.decoder must be decord, pyav or torchcodec" in capsys.readouterr().err
    assert main(["--method", "vifi", "clip.model=test", "clip.pretrained=null", "train.data_wait_warn=-1"]) == 2
    assert "train.data_wait_warn must be >= 0" in capsys.readouterr().err
