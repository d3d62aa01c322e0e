"""``python -m evaluation`` (every protocol and ``compare``) answers every bad input with one line naming the problem
and the fix, exit code 2, no traceback (``--debug`` shows it); out-of-range values are errors, never replaced.

``main(argv)`` runs in this process; every case fails before anything trains (most before a model loads).
"""

from __future__ import annotations

import pytest
import torch

from evaluation.cli import main


def _files(tmp):
    (tmp / "text.pt").write_text("not a checkpoint\n")
    good = tmp / "good.pt"
    torch.save({"model": {"w": torch.ones(64)}}, good)
    (tmp / "truncated.pt").write_bytes(good.read_bytes()[:200])
    (tmp / "textrun").mkdir()
    (tmp / "textrun" / "model.pt").write_text("not a checkpoint\n")
    (tmp / "textrun" / "config.yaml").write_text("method: vifi\n")
    (tmp / "empty").mkdir()
    (tmp / "file.txt").write_text("x\n")


UNTRAINED = ["--untrained", "--method", "vifi", "--model", "test"]
CASES = {
    # (argv with {tmp} for the test's folder, text the one error line must hold)
    "no protocol": ([], "the following arguments are required"),
    "unknown protocol": (["top-secret"], "invalid choice: 'top-secret'"),
    "unknown flag": (["fully-supervised", *UNTRAINED, "--nope"], "unrecognized arguments: --nope"),
    "unknown method": (["fully-supervised", "--untrained", "--method", "nope"], "no method 'nope'"),
    "no model": (["few-shot"], "name a model: --run DIR"),
    "run and untrained": (["few-shot", "--run", "{tmp}/textrun", *UNTRAINED], "not both"),
    "missing run": (["base-to-novel", "--run", "s1={tmp}/nope"], "--run {tmp}/nope does not exist"),
    "text file as a run's model.pt": (["base-to-novel", "--run", "{tmp}/textrun"],
                                      "not a readable PyTorch checkpoint"),
    "text file as --official": (["zero-shot", "--official", "{tmp}/text.pt", "--method", "vifi"],
                                "not a readable PyTorch checkpoint"),
    "truncated --official": (["zero-shot", "--official", "{tmp}/truncated.pt", "--method", "vifi"],
                             "not a readable PyTorch checkpoint"),
    "malformed views": (["fully-supervised", *UNTRAINED, "--views", "4by3"], "views must look like 4x3"),
    "two crops": (["fully-supervised", *UNTRAINED, "--views", "4x2"], "crops 1 or 3"),
    "zero frames": (["fully-supervised", *UNTRAINED, "--frames", "0"], "--frames must be >= 1, got 0"),
    "zero batch": (["fully-supervised", *UNTRAINED, "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    "negative workers": (["fully-supervised", *UNTRAINED, "--workers", "-1"], "--workers must be >= 0"),
    "WiSE-FT alpha above 1": (["zero-shot", *UNTRAINED, "--wise-ft", "2"], "--wise-ft must be between 0 and 1"),
    "unknown sampler": (["fully-supervised", *UNTRAINED, "--sampling", "nope"], "unknown frame sampler 'nope'"),
    "bad dtype": (["fully-supervised", *UNTRAINED, "--dtype", "fp8"], "argument --dtype: invalid choice"),
    "non-integer frames": (["fully-supervised", *UNTRAINED, "--frames", "8.5"], "invalid int value"),
    "unknown device": (["fully-supervised", *UNTRAINED, "--device", "gpu"], "--device 'gpu' is not a device"),
    "unknown aggregation": (["fully-supervised", *UNTRAINED, "--aggregation", "vote"], "invalid choice: 'vote'"),
    "missing shards": (["fully-supervised", *UNTRAINED, "--val", "{tmp}/nope"], "does not exist"),
    "folder without shards": (["few-shot", *UNTRAINED, "--val", "{tmp}/empty"], "no .tar shards in directory"),
    "malformed target": (["zero-shot", *UNTRAINED, "--target", "hmdb51"], "--target must look like NAME[:SPLIT]"),
    "missing class list": (["fully-supervised", *UNTRAINED, "--classes", "{tmp}/nope.txt"], "is not a file"),
    "missing descriptions": (["fully-supervised", *UNTRAINED, "--descriptions", "{tmp}/nope.csv"], "is not a file"),
    "output dir is a file": (["fully-supervised", *UNTRAINED, "--output-dir", "{tmp}/file.txt"],
                             "--output-dir {tmp}/file.txt is a file"),
    "compare: unknown method": (["compare", "--methods", "vifi,nope"], "methods ['nope'] are not installed"),
    "compare: zero iterations": (["compare", "--iters", "0"], "--iters must be >= 1, got 0"),
    "compare: zero frames": (["compare", "--frames", "0"], "--frames must be >= 1"),
    "compare: malformed views": (["compare", "--views", "x"], "views must look like 4x3"),
    "compare: malformed train arg": (["compare", "--train-arg", "epochs"], "--train-arg must look like key=value"),
    "compare: unknown flag": (["compare", "--nope"], "unrecognized arguments: --nope"),
    "compare: bad dtype": (["compare", "--dtype", "fp16"], "argument --dtype: invalid choice"),
    "compare: runs dir is a file": (["compare", "--runs-dir", "{tmp}/file.txt"], "is a file; pick a folder name"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path / "cache"))  # nothing may build the synthetic data here
    _files(tmp_path)
    argv, expected = CASES[name]
    argv, expected = [a.replace("{tmp}", str(tmp_path)) for a in argv], expected.replace("{tmp}", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "error: " in line]
    assert exit_info.value.code == 2 and len(lines) == 1, captured.err
    assert lines[0].startswith("python -m evaluation"), captured.err
    assert expected in lines[0] and "Traceback" not in captured.err, captured.err
    assert not (tmp_path / "cache").exists() and captured.out == ""


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="--frames must be >= 1"):
        main(["fully-supervised", *UNTRAINED, "--frames", "0", "--debug"])
    with pytest.raises(ValueError, match="--iters must be >= 1"):
        main(["compare", "--iters", "0", "--debug"])
