"""Files the project writes and the small text files it reads: one home for each.

Writes are atomic: the bytes go to a temporary file beside the target, are flushed and fsync'ed, get the
permissions a plain ``open()`` would give (``0666 & ~umask``, so 0644 under the usual umask, never
``mkstemp``'s 0600), and are renamed over the target. A crash leaves the old file or the new one, never
half of one. :func:`file_lock` is an inter-process lock (the ``filelock`` package) for build-once caches.

Readers: :func:`read_class_list` (label order) and :func:`read_descriptions` (class name -> text) accept a
catalog reference (``ucf101``, ``ucf101:base``, ``ucf101:t2l``) or a file in any of the official formats.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_torch_save",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_lock",
    "read_class_list",
    "read_descriptions",
]


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(handle)`` on a temporary binary file beside ``path``, then rename it over ``path``.

    The parent directory is created; on any exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _default_mode())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    import torch

    return atomic_write(path, lambda handle: torch.save(obj, handle))


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, timeout: float = -1) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``path`` (created if missing) for the block."""
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path), timeout=timeout):
        yield


# ---------------------------------------------------------------------------------------------------------------
# Readers


def _expand(value: str | os.PathLike) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(str(value))))


def _catalog_reference(value: str | os.PathLike) -> tuple[str, str] | None:
    """``"ucf101"`` / ``"ucf101:base"`` -> (dataset, part) when it names a catalog dataset, not a file."""
    from core.data import catalog

    name, _, part = str(value).partition(":")
    if _expand(value).exists() or name not in catalog.list_datasets():
        return None
    return name, part


def read_class_list(source: str | os.PathLike) -> list[str]:
    """Class names in label order.

    ``source`` is a catalog reference (``kinetics400``, ``ucf101:base``, ``kinetics600:zs_split1``) or a file:
    CSV ``id,name`` (the official ``labels/*.csv``; also without the header), a JSON list or
    ``{"0": name, ...}`` object, or plain text with one name per line.

    Raises:
        FileNotFoundError: neither a catalog dataset nor an existing file.
        ValueError: the file holds no names, is malformed, or has CSV/JSON ids that are not 0..C-1 in order.
    """
    from core.data import catalog

    reference = _catalog_reference(source)
    if reference is not None:
        return catalog.class_names(reference[0], reference[1] or "all")
    path = _expand(source)
    if not path.is_file():
        raise FileNotFoundError(f"class list {str(path)!r} not found: pass a file (one name per line, CSV id,name "
                                f"or JSON) or a catalog dataset ({', '.join(catalog.list_datasets())}[:<list>])")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"class list {path} is not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"class list {path} is not valid JSON ({error})") from None
        if isinstance(obj, dict):
            try:
                keys = sorted(obj, key=int)
            except ValueError:
                raise ValueError(f"class list {path}: JSON object keys must be class ids '0'..'C-1'") from None
            if [int(k) for k in keys] != list(range(len(keys))):
                raise ValueError(f"class list {path}: JSON object keys must be '0'..'{len(keys) - 1}'")
            names = [obj[k] for k in keys]
        elif isinstance(obj, list):
            names = obj
        else:
            raise ValueError(f"class list {path}: expected a JSON list of names or an object id -> name")
    elif suffix == ".csv" or text.replace(" ", "").lower().startswith("id,name"):
        rows = [row for row in csv.reader(text.splitlines()) if row]
        if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["id", "name"]:
            rows = rows[1:]
        try:
            ids = [int(row[0]) for row in rows]
        except ValueError:
            raise ValueError(f"class list {path}: every CSV row must be 'id,name' with an integer id") from None
        if ids != list(range(len(ids))):
            raise ValueError(f"class list {path}: class ids must be 0..C-1 in order, got {ids[:5]}...")
        names = [",".join(row[1:]).strip() for row in rows]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    names = [str(name).strip() for name in names]
    if not names or not all(names):
        raise ValueError(f"class list {path} is empty or has an empty name")
    return names


def read_descriptions(source: str | os.PathLike) -> dict[str, str]:
    """Class name -> description.

    ``source`` is a catalog reference (``ucf101:t2l``: the dataset's T2L descriptions), T2L's
    ``SNo,Class Name,GPT3 discription`` CSV (newlines inside a description deleted, as T2L does), or a JSON
    object name -> text.
    """
    from core.data import catalog

    reference = _catalog_reference(source)
    if reference is not None:
        name, kind = reference[0], reference[1] or "t2l"
        which = (catalog.dataset_info(name).get("descriptions", {}).get(kind) or {}).get("classes", "all")
        return dict(zip(catalog.class_names(name, which), catalog.descriptions(name, kind, which)))
    path = _expand(source)
    if not path.is_file():
        raise FileNotFoundError(f"descriptions file {str(path)!r} not found: pass T2L's CSV, a JSON object "
                                f"name -> text, or a catalog reference such as ucf101:t2l")
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"descriptions file {path} is not valid JSON ({error})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"descriptions file {path}: expected a JSON object class name -> description")
        return {str(k): str(v) for k, v in obj.items()}
    return catalog.read_t2l_descriptions(path)
