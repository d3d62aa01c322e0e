"""Reading checkpoint files without executing pickled code.

Every file the project reads with pickle goes through one of two readers here:

* :func:`safe_load` for the authors' released checkpoints. They pickle more than tensors: a yacs
  ``CfgNode`` (ILA, ViFi-CLIP), an OmegaConf ``DictConfig`` (TC-CLIP), mmengine ``HistoryBuffer`` objects and
  numpy arrays (STAN). ``torch.load(weights_only=True)`` refuses them and ``weights_only=False`` would import
  those libraries and run whatever the pickle names. :func:`safe_load` uses a restricted unpickler instead:

  - a short list of torch functions that rebuild tensors, storages and sizes is called for real (the same
    ones ``torch.load(weights_only=True)`` allows);
  - storages that were pickled with plain ``pickle`` (``torch.storage._load_from_bytes``, which would call
    ``torch.load(weights_only=False)`` on bytes inside the file) are rebuilt by this module from those bytes,
    through this same restricted reader, and must come out as a storage;
  - classes of the data libraries the official formats use (yacs, omegaconf, mmengine, numpy, argparse,
    typing, ...) become inert :class:`Opaque` placeholders: nothing is imported, constructed or called;
  - any other global (``os.system``, ``subprocess.*``, ``builtins.eval``, a user's class, ...) stops the load
    with :class:`UnsafeCheckpointError`, which names the file and says it holds code the project will not run.

  TorchScript archives (which ``torch.load`` would hand to ``torch.jit.load``) are refused too.
* :func:`load_weights` for files the project writes itself (``model.pt``, DeepSpeed checkpoints) and plain
  state dicts: ``torch.load(weights_only=True)`` plus an explicit allow-list of classes, with the same error.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
import types
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["Opaque", "UnsafeCheckpointError", "check_state_dict", "load_state_dict_strict", "load_weights",
           "safe_load"]


class UnsafeCheckpointError(ValueError):
    """A file asks to run code (or build objects) the project does not trust; nothing of it was executed."""

    def __init__(self, path: str | os.PathLike | None, what: str):
        self.path = None if path is None else str(path)
        self.what = what
        where = f"{self.path}" if self.path is not None else "the file"
        super().__init__(
            f"{where} holds code the project will not run ({what}); it was not loaded. Use the authors' original "
            f"file or one written by chronoclip, or re-save the weights alone with torch.save(model.state_dict())")


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


class _Refused(pickle.UnpicklingError):
    """Raised inside the unpickler; :func:`safe_load` turns it into :class:`UnsafeCheckpointError`."""


# Real callables: exactly what rebuilds tensors, storages and a few torch value types (the functions
# torch.load(weights_only=True) allows). None of them imports a module or calls an argument it is given,
# except _rebuild_from_type_v2, which is wrapped below.
_TORCH_REBUILDERS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                     "_rebuild_parameter_with_state", "_rebuild_sparse_tensor", "_rebuild_meta_tensor_no_storage",
                     "_rebuild_qtensor")
_SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex, "bytearray": bytearray}
# Builtins that may appear as (inert) placeholders: data types and getattr (mmengine pickles bound methods
# as getattr(obj, name); as a placeholder it is never called).
_PLACEHOLDER_BUILTINS = {"dict", "list", "tuple", "int", "long", "float", "str", "unicode", "bytes", "bool",
                         "object", "type", "getattr", "NoneType", "range", "Ellipsis"}
# Top-level packages of the data objects the authors' formats pickle: they load as inert placeholders.
_PLACEHOLDER_PACKAGES = {"yacs", "omegaconf", "mmengine", "mmcv", "mmaction", "numpy", "typing", "argparse",
                         "pathlib", "datetime", "decimal", "fractions", "uuid", "enum",
                         "copy_reg", "copyreg", "collections", "easydict", "attrdict", "addict", "timm"}
# torch classes pickled by training code (optimizer / scaler / scheduler objects): placeholders too.
_PLACEHOLDER_TORCH_PREFIXES = ("torch.optim.", "torch.cuda.amp.", "torch.amp.", "torch.utils.data.")


def _rebuild_from_type_v2(func: Any, new_type: Any, args: tuple, state: Any) -> Any:
    if new_type not in (torch.Tensor, torch.nn.Parameter) or func not in _CALLABLE_REBUILDERS:
        raise _Refused(f"a tensor rebuilt as {getattr(new_type, '__qualname__', new_type)!r} by "
                       f"{getattr(func, '__qualname__', func)!r}")
    return torch._tensor._rebuild_from_type_v2(func, new_type, args, state)


def _latin1_bytes(text: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it: the bytes of a latin-1 string, nothing else."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise _Refused(f"_codecs.encode with {type(text).__name__} / {encoding!r}")
    return text.encode("latin1")


def _storage_from_bytes(data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` rebuilt here: the bytes are read by the restricted reader."""
    if not isinstance(data, (bytes, bytearray)):
        raise _Refused("a storage rebuilt from something that is not bytes")
    storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=False,
                         pickle_module=_restricted_pickle)
    if not isinstance(storage, (torch.storage.TypedStorage, torch.storage.UntypedStorage)):
        raise _Refused(f"torch.storage._load_from_bytes returning a {type(storage).__name__}, not a storage")
    return storage


_CALLABLE_REBUILDERS = {getattr(torch._utils, name) for name in _TORCH_REBUILDERS if hasattr(torch._utils, name)}


def _trusted(module: str, name: str) -> Any | None:
    """The real object for a global this reader calls, or None."""
    if module == "collections" and name in {"OrderedDict", "defaultdict"}:
        return getattr(collections, name)
    if module in {"builtins", "__builtin__"}:
        return _SAFE_BUILTINS.get(name)
    if module == "torch._utils" and name in _TORCH_REBUILDERS:
        return getattr(torch._utils, name, None)
    if module == "torch._tensor" and name == "_rebuild_from_type_v2":
        return _rebuild_from_type_v2
    if module == "torch.nn.parameter" and name == "Parameter":
        return torch.nn.Parameter
    if module == "torch" and (name.endswith("Storage") or name in {"Size", "device", "Tensor"}):
        return getattr(torch, name, None)
    if module == "torch" and isinstance(getattr(torch, name, None), (torch.dtype, torch.layout,
                                                                     torch.memory_format)):
        return getattr(torch, name)
    if module == "torch.storage" and name in {"UntypedStorage", "TypedStorage"}:
        return getattr(torch.storage, name)
    if module == "torch.storage" and name == "_load_from_bytes":
        return _storage_from_bytes
    if module == "_codecs" and name == "encode":
        return _latin1_bytes
    if module == "torch.serialization" and name == "_get_layout":
        return torch.serialization._get_layout
    return None


def _inert(module: str, name: str) -> bool:
    """Whether the global may stand in the result as an :class:`Opaque` placeholder."""
    if module in {"builtins", "__builtin__"}:
        return name in _PLACEHOLDER_BUILTINS
    if module.startswith("torch."):
        return f"{module}.".startswith(_PLACEHOLDER_TORCH_PREFIXES)
    return module.split(".", 1)[0] in _PLACEHOLDER_PACKAGES


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        trusted = _trusted(module, name)
        if trusted is not None:
            return trusted
        if _inert(module, name):
            return _placeholder(f"{module}.{name}")
        raise _Refused(f"it asks to call {module}.{name}")


class _RestrictedPickleModule(types.ModuleType):
    """What ``torch.load(pickle_module=...)`` expects: ``Unpickler`` and ``load``."""

    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


_restricted_pickle = _RestrictedPickleModule("chronoclip_restricted_pickle")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def _check_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist (or is not a file); check the path")


def _unreadable(path: Path, error: BaseException) -> ValueError:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, pickle.UnpicklingError) and "WeightsUnpickler error:" in str(error):
        lines = lines[[i for i, line in enumerate(lines) if "WeightsUnpickler error:" in line][0] + 1:]
    text = lines[0] if lines else ""
    detail = f"{type(error).__name__}: {text.split('. ')[0][:160]}" if text else type(error).__name__
    return ValueError(f"{path} is not a readable PyTorch checkpoint ({detail}); it may be truncated or not a "
                      f"checkpoint at all: check the file (its size, its download)")


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a ``torch.save`` file, restoring tensors and replacing untrusted objects by :class:`Opaque`.

    Args:
        path: the checkpoint file (zip or legacy format).
        map_location: where tensors go, as in ``torch.load``.

    Returns:
        The unpickled object; tensors are real tensors, data objects of the known libraries are ``Opaque``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        UnsafeCheckpointError: the file names a global outside the lists above (nothing was executed), or it
            is a TorchScript archive.
        ValueError: the file is not a readable checkpoint (truncated, not a pickle).
    """
    path = Path(path)
    _check_file(path, "checkpoint")
    if _is_torchscript(path):
        raise UnsafeCheckpointError(path, "a TorchScript archive, whose code would be compiled and run")
    try:
        # weights_only=False is required to pass a pickle module; safety comes from that module's find_class.
        return torch.load(path, map_location=map_location, weights_only=False, pickle_module=_restricted_pickle)
    except _Refused as refused:
        raise UnsafeCheckpointError(path, str(refused)) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, AttributeError, TypeError,
            IndexError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise _unreadable(path, error) from None


# Classes DeepSpeed (0.19) pickles in its checkpoints besides tensors and containers: the loss scaler of the
# ZeRO / fp16 optimizers, the ZeRO stage enum and the fragment addresses of partitioned parameters.
DEEPSPEED_CHECKPOINT_CLASSES = (
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
)


def _import_classes(qualnames: Iterable[str]) -> list[type]:
    import importlib

    classes = []
    for qualname in qualnames:
        module, _, name = qualname.rpartition(".")
        try:
            classes.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue  # not in this version of the library: files that pickle it are refused
    return classes


def load_weights(path: str | os.PathLike, map_location: Any = "cpu", *, allow: Iterable[str] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` with the classes named in ``allow`` (``module.Class``) added.

    The allow-list applies to this call only (``torch.serialization.safe_globals``); nothing global changes.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file pickles a global outside torch's weights-only set and ``allow``.
        ValueError: the file is not a readable checkpoint (truncated, not a pickle).
    """
    path = Path(path)
    _check_file(path, "checkpoint")
    classes = _import_classes(allow)
    try:
        with torch.serialization.safe_globals(classes):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _weights_only_reason(str(error))
        if reason is None:  # not a refused global: a damaged file or not a pickle at all
            raise _unreadable(path, error) from None
        raise UnsafeCheckpointError(path, reason) from None
    except (RuntimeError, EOFError, OSError, KeyError, AttributeError, TypeError, IndexError, ValueError,
            zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise _unreadable(path, error) from None


def _weights_only_reason(message: str) -> str | None:
    """The global torch's weights-only reader refused (``it asks to call posix.system``), or None."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    return f"it asks to call {found.group(1)}" if found else None


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
