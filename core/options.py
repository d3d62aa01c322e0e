"""A method's options: one frozen dataclass, built from a recipe's ``method_options`` mapping and checked.

Every method declares its options once (``Method.options_class``, a frozen dataclass with a comment per
field, open_clip's ``CLIPVisionCfg`` style); its defaults are the only place each default is written.
:func:`build_options` turns a mapping into that dataclass: an unknown key is an error naming the close
matches, a value of the wrong type an error naming the field, its type and the value. Nested dataclass
fields (ILA's ``optim``) take a mapping of their own fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

__all__ = ["OptionsError", "build_options", "option_names"]


class OptionsError(ValueError):
    """A ``method_options`` key or value the method does not accept."""


def option_names(cls: type) -> list[str]:
    """The field names of an options dataclass, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def build_options(cls: type, values: Mapping[str, Any] | Any, what: str = "method_options") -> Any:
    """``cls(**values)`` after checking every key and value against the dataclass ``cls``.

    Args:
        cls: a (frozen) dataclass.
        values: a mapping of field -> value, or an instance of ``cls`` (returned as is).
        what: how messages name the mapping (e.g. ``method_options of method 'stan'``).

    Raises:
        OptionsError: a key that is not a field (the message lists close matches and every field), or a
            value that does not fit the field's annotation.
    """
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise OptionsError(f"{what} must be a mapping of option -> value, got {type(values).__name__}")
    names = option_names(cls)
    unknown = [k for k in values if k not in names]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), names, n=3, cutoff=0.6)
            hints.append(f"{key!r}" + (f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""))
        raise OptionsError(f"{what}: unknown option {', '.join(hints)}; valid: {', '.join(names) or 'none'}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            kwargs[key] = build_options(hint, value if value is not None else {}, f"{what}.{key}")
            continue
        if not _fits(value, hint):
            raise OptionsError(f"{what}: option {key!r} must be {_describe(hint)}, got {value!r} "
                               f"({type(value).__name__})")
        kwargs[key] = tuple(value) if _is_tuple(hint) and isinstance(value, list) else value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:  # __post_init__ range checks
        raise OptionsError(f"{what}: {err}") from err


def _is_tuple(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_is_tuple(a) for a in typing.get_args(hint))
    return origin is tuple or hint is tuple


def _fits(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list, Sequence) or hint in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return not args or all(_fits(v, args[0]) for v in value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin in (tuple, list, Sequence):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_describe(args[0])}" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint)))
