"""No loading path of core runs code from a file: crafted payloads are refused by name, nothing executes.

Per-method spliced official checkpoints are tested in ``methods/<name>/tests/test_<name>_payload.py`` (each
method may be installed alone); here: the readers themselves, the ViFi-CLIP official path, ``model.pt`` and
the loaders behind ``core.predict --checkpoint`` and ``python -m evaluation --official``.
"""

from __future__ import annotations

import io
import pickle

import pytest
import torch

import core
from core.clip import build_clip
from core.serialization import DEEPSPEED_CHECKPOINT_CLASSES, UnsafeCheckpointError, load_weights, safe_load
from core.testing import load_from_bytes_payload, shell_payload, splice_payload

REFUSED = "holds code the project will not run"


def _payloads(marker):
    return {"reduce": shell_payload(marker), "load_from_bytes": load_from_bytes_payload(marker)}


def _files(tmp_path, marker):
    """One file per (payload, format): zip and legacy (non-zip) torch.save files of a dict with weights."""
    files = {}
    for name, payload in _payloads(marker).items():
        for fmt, zipped in (("zip", True), ("legacy", False)):
            path = tmp_path / f"{name}_{fmt}.pt"
            torch.save({"w": torch.ones(3), "x": payload}, path, _use_new_zipfile_serialization=zipped)
            files[f"{name}-{fmt}"] = path
    return files


def test_payloads_really_run_in_a_free_unpickler(tmp_path, marker):
    """The crafted files are real attacks: plain torch.load(weights_only=False) runs them."""
    for path in _files(tmp_path, marker).values():
        torch.load(path, weights_only=False)
        assert marker.exists(), path
        marker.unlink()


@pytest.mark.parametrize("reader", [safe_load, load_weights, lambda p: load_weights(p, allow=DEEPSPEED_CHECKPOINT_CLASSES)],
                         ids=["safe_load", "load_weights", "load_weights+deepspeed"])
def test_readers_refuse_every_payload(reader, tmp_path, marker):
    for kind, path in _files(tmp_path, marker).items():
        with pytest.raises(UnsafeCheckpointError, match=REFUSED) as info:
            reader(path)
        assert str(path) in str(info.value), kind
        assert "posix.system" in str(info.value) or "_load_from_bytes" in str(info.value), kind


def test_load_from_bytes_is_rebuilt_without_unpickling_freely(tmp_path, marker):
    """A genuine plain-pickled storage still loads (rebuilt by the restricted reader); the gadget does not."""
    with pytest.warns(UserWarning, match="TypedStorage is deprecated"):
        storage = torch.arange(4.0).storage()  # TypedStorage: pickles as _load_from_bytes(bytes)
    reduced = storage.__reduce__()
    assert reduced[0] is torch.storage._load_from_bytes

    class Wrapped:
        def __reduce__(self):
            return reduced

    good = tmp_path / "good.pt"
    torch.save({"s": Wrapped()}, good)
    assert torch.equal(torch.tensor(safe_load(good)["s"].tolist()), torch.arange(4.0))
    # the same function carrying a pickle that is not a storage
    bad = tmp_path / "bad.pt"
    buffer = io.BytesIO()
    torch.save({"not": "a storage"}, buffer, _use_new_zipfile_serialization=False)

    class NotStorage:
        def __reduce__(self):
            return torch.storage._load_from_bytes, (buffer.getvalue(),)

    torch.save({"s": NotStorage()}, bad)
    with pytest.raises(UnsafeCheckpointError, match="not a storage"):
        safe_load(bad)


def test_other_gadgets_are_refused(tmp_path, marker):
    """eval/exec/getattr chains, a torch function that loads files, a pickled user class: all refused."""
    class Eval:
        def __reduce__(self):
            return eval, ("1+1",)

    class JitLoad:
        def __reduce__(self):
            return torch.jit.load, ("x.pt",)

    for name, obj in (("eval", Eval()), ("jit", JitLoad())):
        path = tmp_path / f"{name}.pt"
        torch.save({"x": obj}, path)
        with pytest.raises(UnsafeCheckpointError, match=REFUSED):
            safe_load(path)
    # a payload named through the copyreg extension registry (EXT opcodes) still goes through find_class
    import copyreg

    path = tmp_path / "ext.pt"
    copyreg.add_extension("posix", "system", 0xBEEF)
    try:
        assert b"\x83" in pickle.dumps(shell_payload(marker), protocol=2)  # EXT2 instead of GLOBAL
        torch.save({"x": shell_payload(marker)}, path)
        with pytest.raises(UnsafeCheckpointError, match="posix.system"):
            safe_load(path)
    finally:
        copyreg.remove_extension("posix", "system", 0xBEEF)


def test_torchscript_archive_is_refused_by_safe_load(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(UnsafeCheckpointError, match="TorchScript"):
        safe_load(path)


def test_truncated_and_text_files_are_value_errors_naming_the_file(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(10)}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint\n")
    for path in (truncated, text):
        for reader in (safe_load, load_weights):
            with pytest.raises(ValueError, match="not a readable PyTorch checkpoint") as info:
                reader(path)
            assert str(path) in str(info.value) and not isinstance(info.value, UnsafeCheckpointError)


def _vifi_official(tmp_path):
    """A ViFi-CLIP-format checkpoint: a fine-tuned CLIP state dict under ``model`` (``module.`` prefixed)."""
    clip = build_clip("test")
    path = tmp_path / "vifi.pth"
    torch.save({"model": {f"module.{k}": v for k, v in clip.state_dict().items()}, "epoch": 3}, path)
    return path


@pytest.mark.parametrize("payload", ["reduce", "load_from_bytes"])
def test_vifi_official_predict_and_evaluation_loaders_refuse_spliced_payload(payload, tmp_path, marker):
    from core.predict import load_predictor
    from evaluation.sources import load_model

    genuine = _vifi_official(tmp_path)
    core.load_official("vifi", genuine)  # the genuine file loads
    spliced = splice_payload(genuine, tmp_path / "spliced.pth", _payloads(marker)[payload])
    loaders = {
        "core.load_official": lambda: core.load_official("vifi", spliced),
        "core.predict --checkpoint": lambda: load_predictor("vifi", spliced),
        "evaluation --official": lambda: load_model(official=spliced, method="vifi"),
    }
    for name, load in loaders.items():
        with pytest.raises(UnsafeCheckpointError, match=REFUSED) as info:
            load()
        assert str(spliced) in str(info.value), name


@pytest.mark.parametrize("payload", ["reduce", "load_from_bytes"])
def test_tampered_model_pt_is_refused_by_every_run_loader(payload, tmp_path, marker):
    from core.predict import load_predictor
    from core.runs import MODEL_FORMAT, load_run_model
    from evaluation.sources import load_model

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("method: vifi\n")
    genuine = tmp_path / "genuine.pt"
    torch.save({"format": MODEL_FORMAT, "version": 1, "state_dict": {"w": torch.ones(2)}}, genuine)
    splice_payload(genuine, run / "model.pt", _payloads(marker)[payload])
    loaders = {
        "core.runs.load_run_model": lambda: load_run_model(run),
        "core.predict --checkpoint": lambda: load_predictor("vifi", run / "model.pt"),
        "evaluation --run": lambda: load_model(run=run),
    }
    for name, load in loaders.items():
        with pytest.raises(UnsafeCheckpointError, match=REFUSED) as info:
            load()
        assert str(run / "model.pt") in str(info.value), name


def test_clip_weights_file_with_payload_is_refused(tmp_path, marker):
    """--pretrained / --method clip read CLIP state dicts with weights_only=True: refused by name too."""
    genuine = tmp_path / "clip.pt"
    torch.save(build_clip("test").state_dict(), genuine)
    spliced = splice_payload(genuine, tmp_path / "clip_spliced.pt", shell_payload(marker))
    for load in (lambda: build_clip(None, pretrained=spliced), lambda: core.load_official("clip", spliced)):
        with pytest.raises(UnsafeCheckpointError, match=REFUSED):
            load()
