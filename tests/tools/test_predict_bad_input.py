"""``python -m core.predict`` answers every bad input with one line naming the problem and the fix, exit code 2,
no traceback (``--debug`` shows it); out-of-range values are errors, never silently replaced.

``main(argv)`` runs in this process; every case fails before a video is decoded (most before a model loads).
"""

from __future__ import annotations

import pytest
import torch

from core.predict import main

PROG = "python -m core.predict: error: "


def _cases(tmp, run, videos):
    (tmp / "text.pt").write_text("not a checkpoint\n")
    good = tmp / "good.pt"
    torch.save({"w": torch.ones(64)}, good)
    (tmp / "truncated.pt").write_bytes(good.read_bytes()[:200])
    (tmp / "empty").mkdir()
    video = str(videos / "a.mp4")
    ckpt = ["--checkpoint", str(run)]
    return {
        "zero frames": ([video, *ckpt, "--frames", "0"], "--frames must be >= 1, got 0"),
        "negative top-k": ([video, *ckpt, "--top-k", "-1"], "--top-k must be >= 1, got -1"),
        "zero top-k": ([video, *ckpt, "--top-k", "0"], "--top-k must be >= 1, got 0"),
        "malformed views": ([video, *ckpt, "--views", "4by3"], "views must look like 4x3"),
        "two crops": ([video, *ckpt, "--views", "4x2"], "crops 1 or 3"),
        "zero window": ([video, *ckpt, "--timeline", str(tmp / "t.json"), "--window", "0"], "--window must be > 0"),
        "negative stride": ([video, *ckpt, "--timeline", str(tmp / "t.json"), "--stride", "-1"],
                            "--stride must be > 0"),
        "unknown method": ([video, "--checkpoint", str(good), "--method", "nope"], "nope"),
        "method contradicts the run": ([video, *ckpt, "--method", "t2l"], "pass --method vifi"),
        "text file as checkpoint": ([video, "--checkpoint", str(tmp / "text.pt"), "--method", "vifi"],
                                    "not a readable PyTorch checkpoint"),
        "truncated checkpoint": ([video, "--checkpoint", str(tmp / "truncated.pt"), "--method", "vifi"],
                                 "not a readable PyTorch checkpoint"),
        "missing checkpoint": ([video, "--checkpoint", str(tmp / "nope.pt"), "--method", "vifi"], "nope.pt"),
        "missing video": ([str(tmp / "nope.mp4"), *ckpt], "is neither a video file nor a folder"),
        "folder without videos": ([str(tmp / "empty"), *ckpt], "no video files found"),
        "bad dtype": ([video, *ckpt, "--dtype", "fp8"], "argument --dtype: invalid choice"),
        "non-integer frames": ([video, *ckpt, "--frames", "eight"], "argument --frames: invalid int value"),
        "unknown flag": ([video, *ckpt, "--nope"], "unrecognized arguments: --nope"),
        "no checkpoint": ([video], "the following arguments are required: --checkpoint"),
        "unknown device": ([video, *ckpt, "--device", "gpu"], "--device 'gpu' is not a device"),
        "bad output suffix": ([video, *ckpt, "--output", str(tmp / "out.txt")], "use a .csv or .json file name"),
        "bad features suffix": ([video, *ckpt, "--features", str(tmp / "f.txt")], "use a .npz or .safetensors"),
        "labels and labels file": ([video, *ckpt, "--labels", "a,b", "--labels-file", str(tmp / "l.txt")],
                                   "pass exactly one of"),
        "one label": ([video, *ckpt, "--labels", "a"], "need at least 2 labels"),
        "missing labels file": ([video, "--checkpoint", str(good), "--method", "vifi", "--labels-file",
                                 str(tmp / "nope.txt")], "class list"),
        "missing descriptions": ([video, *ckpt, "--descriptions", str(tmp / "nope.csv")], "is not a file"),
        "malformed option": ([video, *ckpt, "--option", "layers"], "must look like key=value"),
        "unknown decoder": ([video, *ckpt, "--decoder", "ffmpeg"], "argument --decoder: invalid choice"),
    }


NAMES = ["zero frames", "negative top-k", "zero top-k", "malformed views", "two crops", "zero window",
         "negative stride", "unknown method", "method contradicts the run", "text file as checkpoint",
         "truncated checkpoint", "missing checkpoint", "missing video", "folder without videos", "bad dtype",
         "non-integer frames", "unknown flag", "no checkpoint", "unknown device", "bad output suffix",
         "bad features suffix", "labels and labels file", "one label", "missing labels file", "missing descriptions",
         "malformed option", "unknown decoder"]


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_line_exit_2(name, tmp_path, tiny_run, video_folder, offline_hub, capsys):
    argv, expected = _cases(tmp_path, tiny_run, video_folder)[name]
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own errors (one line too)
        code = exit_info.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "error: " in line]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("python -m core.predict"), captured.err
    assert expected in lines[0] and "Traceback" not in captured.err, captured.err
    assert captured.out == ""


def test_debug_shows_the_traceback(tiny_run, video_folder):
    with pytest.raises(ValueError, match="--frames must be >= 1"):
        main([str(video_folder / "a.mp4"), "--checkpoint", str(tiny_run), "--frames", "0", "--debug"])
