"""``python -m evaluation.profile`` answers every bad input with one line naming the problem and the fix, exit code
2, no traceback (``--debug`` shows it); out-of-range counts are errors, never replaced.

``main(argv)`` runs in this process; every case fails before anything is timed (most before a model is built).
"""

from __future__ import annotations

import pytest
import torch

from evaluation.profile import main

VIFI = ["--method", "vifi", "--model", "test"]
CASES = {
    # (argv with {tmp} for the test's folder, text the one error line must hold)
    "zero frames": ([*VIFI, "--frames", "0"], "--frames must be >= 1, got 0"),
    "zero batch": ([*VIFI, "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    "zero classes": ([*VIFI, "--num-classes", "0"], "--num-classes must be >= 1, got 0"),
    "zero iterations": ([*VIFI, "--iters", "0"], "--iters must be >= 1, got 0"),
    "negative warm-up": ([*VIFI, "--warmup", "-1"], "--warmup must be >= 0, got -1"),
    "non-integer input size": ([*VIFI, "--input-size", "big"], "argument --input-size: invalid int value"),
    "unknown method": (["--method", "vifi,nope", "--model", "test"], "no method 'nope'"),
    "empty method list": (["--method", ",", "--model", "test"], "names no method"),
    "unknown recipe": ([*VIFI, "--config", "nope"], "--config 'nope': vifi ship(s) no such recipe"),
    "missing run": (["--run", "{tmp}/nope"], "--run {tmp}/nope does not exist"),
    "run and untrained": (["--run", "{tmp}/text.pt", "--untrained", *VIFI], "pass one model source"),
    "text file as --official": (["--official", "{tmp}/text.pt", "--method", "vifi"],
                                "not a readable PyTorch checkpoint"),
    "truncated --official": (["--official", "{tmp}/truncated.pt", "--method", "vifi"],
                             "not a readable PyTorch checkpoint"),
    "--official with every method": (["--official", "{tmp}/text.pt", "--method", "all"], "not all"),
    "unknown device": ([*VIFI, "--device", "tpu:0"], "--device 'tpu:0' is not a device"),
    "bad dtype": ([*VIFI, "--dtype", "fp16"], "argument --dtype: invalid choice"),
    "json path is a folder": ([*VIFI, "--json", "{tmp}"], "is a folder; pass a file name"),
    "unknown CLIP architecture": (["--method", "vifi", "--model", "ViT-Z-99"], "no model could be built on ViT-Z-99"),
    "unknown flag": ([*VIFI, "--nope"], "unrecognized arguments: --nope"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2(name, tmp_path, capsys):
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.ones(64)}}, good)
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:200])
    argv, expected = CASES[name]
    argv, expected = [a.replace("{tmp}", str(tmp_path)) for a in argv], expected.replace("{tmp}", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "error: " in line]
    assert exit_info.value.code == 2 and len(lines) == 1, captured.err
    assert lines[0].startswith("python -m evaluation.profile"), captured.err
    assert expected in lines[0] and "Traceback" not in captured.err, captured.err
    assert captured.out == ""


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="--iters must be >= 1"):
        main([*VIFI, "--iters", "0", "--debug"])
