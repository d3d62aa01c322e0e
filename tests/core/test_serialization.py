"""safe_load reads checkpoints holding foreign pickled objects without running any code."""

from __future__ import annotations

import os
import sys
import types
from collections import OrderedDict

import pytest
import torch

from core.serialization import Opaque, UnsafeCheckpointError, safe_load


def _module_with_classes() -> types.ModuleType:
    """A throw-away module standing in for yacs/mmengine: its classes exist only while pickling."""
    module = types.ModuleType("yacs.config")

    class CfgNode(dict):
        pass

    class HistoryBuffer:
        def __init__(self, values):
            self.values = values

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch /tmp/chronoclip-pwned",))

    for cls in (CfgNode, HistoryBuffer, Exploit):
        cls.__module__ = module.__name__
        cls.__qualname__ = cls.__name__
        setattr(module, cls.__name__, cls)
    return module


def test_foreign_objects_become_inert_placeholders(tmp_path):
    module = _module_with_classes()
    parent = types.ModuleType("yacs")
    parent.config = module
    saved = {name: sys.modules.get(name) for name in ("yacs", module.__name__)}
    sys.modules.update({"yacs": parent, module.__name__: module})
    try:
        cfg = module.CfgNode(MODEL={"ARCH": "ViT-B/16"}, DATA={"NUM_FRAMES": 8})
        payload = {
            "model": OrderedDict(weight=torch.arange(6.0).view(2, 3), bias=torch.ones(2, dtype=torch.float16)),
            "config": cfg,
            "history": module.HistoryBuffer([1.0, 2.0]),
            "epoch": 7,
        }
        path = tmp_path / "ckpt.pth"
        torch.save(payload, path, pickle_protocol=2)
        exploit = tmp_path / "exploit.pth"
        torch.save({**payload, "exploit": module.Exploit()}, exploit, pickle_protocol=2)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    if os.path.exists("/tmp/chronoclip-pwned"):
        os.remove("/tmp/chronoclip-pwned")

    loaded = safe_load(path)
    torch.testing.assert_close(loaded["model"]["weight"], torch.arange(6.0).view(2, 3))
    assert loaded["model"]["bias"].dtype == torch.float16
    assert loaded["epoch"] == 7
    assert isinstance(loaded["config"], Opaque) and loaded["config"].qualname == "yacs.config.CfgNode"
    assert loaded["config"]["DATA"] == {"NUM_FRAMES": 8}
    assert loaded["history"].state == {"values": [1.0, 2.0]}
    # a class of a data library is inert; a call to anything else stops the load, naming the file
    with pytest.raises(UnsafeCheckpointError, match=r"exploit.pth holds code the project will not run .*posix"):
        safe_load(exploit)
    assert not os.path.exists("/tmp/chronoclip-pwned")


def test_plain_pickle_protocols_and_missing_file(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(3)}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(safe_load(path)["w"], torch.zeros(3))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        safe_load(tmp_path / "nope.pt")


def test_check_state_dict_lists_every_problem_once():
    import torch

    from core.serialization import check_state_dict, load_state_dict_strict

    model = torch.nn.Linear(2, 3)
    given = {"weight": torch.zeros(3, 4), "extra": torch.zeros(1)}
    with pytest.raises(ValueError) as err:
        check_state_dict(model.state_dict(), given, "file.pth", display=lambda k: f"theirs.{k}", hint="Do X.")
    lines = str(err.value).splitlines()
    assert lines == ["file.pth does not match the model:", "  missing (1): theirs.bias",
                     "  unexpected (1): theirs.extra", "  shape of theirs.weight: file (3, 4) vs model (3, 2)", "Do X."]
    state = {"weight": torch.ones(3, 2, dtype=torch.float64), "bias": torch.ones(3, dtype=torch.float64)}
    load_state_dict_strict(model, state, "ok.pth")
    assert model.weight.dtype == torch.float32 and torch.equal(model.weight, torch.ones(3, 2))
