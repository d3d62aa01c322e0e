"""Reading checkpoint files without executing pickled code.

The authors' released checkpoints pickle more than tensors: a yacs ``CfgNode`` (ILA), an OmegaConf
``DictConfig`` (TC-CLIP), mmengine ``HistoryBuffer`` objects and numpy arrays (STAN). ``torch.load`` with
``weights_only=True`` refuses them, and ``weights_only=False`` would import those libraries and run
whatever the pickle names. :func:`safe_load` takes a third way: a restricted unpickler that restores
tensors, storages, containers and primitives, and turns every other global into an inert
:class:`Opaque` placeholder. Nothing foreign is imported or called.
"""

from __future__ import annotations

import collections
import os
import pickle
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["Opaque", "check_state_dict", "load_state_dict_strict", "safe_load"]


class Opaque(dict):
    """Stand-in for an object of a class this reader does not trust.

    It records what the pickle gave it and nothing runs: ``qualname`` is the original
    ``module.name``, ``args`` the constructor arguments, ``state`` what ``__setstate__`` received.
    It is a ``dict`` so that pickled dict subclasses (yacs ``CfgNode``) keep their items.
    """

    qualname: str = "?"
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        items = f", items={dict.__repr__(self)}" if len(self) else ""
        return f"Opaque({self.qualname}{items})"


_placeholders: dict[str, type[Opaque]] = {}


def _placeholder(qualname: str) -> type[Opaque]:
    if qualname not in _placeholders:
        _placeholders[qualname] = type(qualname.rsplit(".", 1)[-1], (Opaque,), {"qualname": qualname})
    return _placeholders[qualname]


# Everything a plain ``torch.save`` of tensors and containers needs; nothing that can run code.
_SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex, "bytearray": bytearray}


def _trusted(module: str, name: str) -> Any | None:
    if module == "collections" and name in {"OrderedDict", "defaultdict"}:
        return getattr(collections, name)
    if module in {"builtins", "__builtin__"}:
        return _SAFE_BUILTINS.get(name)
    if module == "torch._utils" and name.startswith("_rebuild_"):
        return getattr(torch._utils, name, None)
    if module == "torch._tensor" and name == "_rebuild_from_type_v2":
        return torch._tensor._rebuild_from_type_v2
    if module in {"torch.nn.parameter"} and name == "Parameter":
        return torch.nn.Parameter
    if module == "torch" and (name.endswith("Storage") or name in {"Size", "device", "Tensor"}):
        return getattr(torch, name, None)
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if module == "torch.storage" and name in {"UntypedStorage", "TypedStorage", "_load_from_bytes"}:
        return getattr(torch.storage, name)
    if module == "torch.serialization" and name == "_get_layout":
        return torch.serialization._get_layout
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        trusted = _trusted(module, name)
        return trusted if trusted is not None else _placeholder(f"{module}.{name}")


class _RestrictedPickleModule(types.ModuleType):
    """What ``torch.load(pickle_module=...)`` expects: ``Unpickler`` and ``load``."""

    Unpickler = _RestrictedUnpickler

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


_restricted_pickle = _RestrictedPickleModule("chronoclip_restricted_pickle")


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a ``torch.save`` file, restoring tensors and replacing untrusted objects by :class:`Opaque`.

    Args:
        path: the checkpoint file.
        map_location: where tensors go, as in ``torch.load``.

    Returns:
        The unpickled object; tensors are real tensors, foreign objects are ``Opaque`` placeholders.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist (or is not a file); check the path")
    # weights_only=False is required to pass a pickle module; safety comes from that module's find_class.
    return torch.load(path, map_location=map_location, weights_only=False, pickle_module=_restricted_pickle)


def check_state_dict(expected: Mapping[str, torch.Tensor], given: Mapping[str, Any], source: str, *,
                     display: Callable[[str], str] | None = None, hint: str | None = None, limit: int = 12) -> None:
    """Key accounting of a state dict against a model's: one error listing every problem, or nothing.

    Args:
        expected: the model's ``state_dict()``.
        given: the tensors read from a file, under the model's key names.
        source: what ``given`` is, for the message (``"ILA checkpoint x.pth (k400, 8 frames)"``).
        display: maps a key to the name shown in the message (e.g. the authors' key); identity by default.
        hint: a last line telling the user what to do.
        limit: names listed per kind.

    Raises:
        ValueError: keys missing from ``given``, keys ``given`` has that the model lacks, or tensors whose
            shapes differ, each counted and listed (shapes as file vs model).
    """
    show = display or (lambda key: key)
    missing = sorted(show(k) for k in set(expected) - set(given))
    unexpected = sorted(show(k) for k in set(given) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(given) if tuple(expected[k].shape) != tuple(given[k].shape))
    if not (missing or unexpected or mismatched):
        return
    lines = [f"{source} does not match the model:"]
    for kind, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            more = " ..." if len(keys) > limit else ""
            lines.append(f"  {kind} ({len(keys)}): {', '.join(keys[:limit])}{more}")
    lines += [f"  shape of {show(k)}: file {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in mismatched[:limit]]
    if hint:
        lines.append(hint)
    raise ValueError("\n".join(lines))


def load_state_dict_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str, *,
                           display: Callable[[str], str] | None = None, hint: str | None = None) -> None:
    """:func:`check_state_dict`, then load ``state`` into ``model`` with every tensor cast to the model's dtype."""
    expected = model.state_dict()
    check_state_dict(expected, state, source, display=display, hint=hint)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
