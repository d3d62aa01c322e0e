"""``core.train`` answers every bad input with one line naming the problem and the fix, exit code 2, no traceback.

Every case fails before training starts (most before DeepSpeed is set up); ``main(argv)`` runs in this process.
"""

from __future__ import annotations

import pytest

from core.train import main

TINY = ["clip.model=test", "clip.pretrained=null"]


def _cases(tmp):
    (tmp / "file.txt").write_text("not a checkpoint\n")
    (tmp / "bad.yaml").write_text("optim: [unclosed\n")
    out = ["--output-dir", str(tmp / "out")]
    return {
        "unknown method": (["--method", "nope"], "no method 'nope'"),
        "unknown config key": (["--method", "vifi", "optim.lrr=1", *TINY, *out], "unknown config key 'optim.lrr'"),
        "unknown flag": (["--method", "vifi", "--nope", "1", *TINY, *out], "unknown config key 'nope'"),
        "unparsable token": (["--method", "vifi", "garbage", *TINY, *out], "cannot parse argument 'garbage'"),
        "value of the wrong type": (["--method", "vifi", "optim.lr=abc", *TINY, *out], "optim.lr takes a number"),
        "negative learning rate": (["--method", "vifi", "optim.lr=-1", *TINY, *out], "optim.lr must be > 0"),
        "zero batch": (["--method", "vifi", "train.batch_size=0", *TINY, *out], "train.batch_size must be >= 1"),
        "zero frames": (["--method", "vifi", "data.num_frames=0", *TINY, *out], "data.num_frames must be >= 1"),
        "ZeRO stage 3": (["--method", "vifi", "train.zero_stage=3", *TINY, *out], "train.zero_stage must be 0, 1 or 2"),
        "unknown precision": (["--method", "vifi", "train.precision=fp8", *TINY, *out], "train.precision must be"),
        "missing config file": (["--method", "vifi", "--config", str(tmp / "nope.yaml"), *TINY, *out], "not found"),
        "resume a missing run": (["--resume", str(tmp / "nope")], "not a run directory or a checkpoint"),
        "output dir is a file": (["--method", "vifi", *TINY, "--output-dir", str(tmp / "file.txt")],
                                 "is a file; pick a new --output-dir"),
        "class list without shards": (["--method", "vifi", "--class-names", str(tmp / "nope.txt"), *TINY, *out],
                                      "given without data.train_shards"),
        "missing CLIP weights": (["--method", "vifi", "--pretrained", str(tmp / "nope.pt"), "clip.model=test", *out],
                                 "not found"),
        "text file as CLIP weights": (["--method", "vifi", "--pretrained", str(tmp / "file.txt"), "clip.model=test",
                                       *out], "not a readable PyTorch checkpoint"),
        "missing training shards": (["--method", "vifi", "--train-shards", str(tmp / "nope"), *TINY, *out],
                                    "does not exist"),
        "unknown CLIP architecture": (["--method", "vifi", "--model", "ViT-Z-99", "clip.pretrained=null", *out],
                                      "unknown CLIP architecture 'ViT-Z-99'"),
    }


NAMES = ["unknown method", "unknown config key", "unknown flag", "unparsable token", "value of the wrong type",
         "negative learning rate", "zero batch", "zero frames", "ZeRO stage 3", "unknown precision",
         "missing config file", "resume a missing run", "output dir is a file", "class list without shards",
         "missing CLIP weights", "text file as CLIP weights", "missing training shards", "unknown CLIP architecture"]


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_line_exit_2(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path / "cache"))
    argv, expected = _cases(tmp_path)[name]
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("core.train: error: ")]
    assert code == 2 and len(lines) == 1, err
    assert expected in lines[0] and "Traceback" not in err, err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="optim.lr must be > 0"):
        main(["--method", "vifi", "optim.lr=-1", *TINY, "--output-dir", str(tmp_path / "o"), "--debug"])
