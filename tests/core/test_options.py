"""``core.options.build_options``: a recipe's method_options become the method's frozen dataclass, or one clear error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from core.options import OptionsError, build_options


@dataclass(frozen=True)
class _Inner:
    scale: float = 1.0


@dataclass(frozen=True)
class _Options:
    depth: int = 4
    mode: Literal["a", "b"] = "a"
    levels: int | str | tuple[int, ...] | None = None
    flag: bool = True
    inner: _Inner = field(default_factory=_Inner)

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")


def test_values_become_the_dataclass():
    built = build_options(_Options, {"depth": 2, "levels": [10, 12], "inner": {"scale": 3}})
    assert built == _Options(depth=2, levels=(10, 12), inner=_Inner(3))
    assert build_options(_Options, {}) == _Options() and build_options(_Options, built) is built


@pytest.mark.parametrize("values, message", [
    ({"dpeth": 2}, "unknown option 'dpeth' (did you mean 'depth'?); valid: depth, mode, levels, flag, inner"),
    ({"inner": {"scal": 2}}, "opts.inner: unknown option 'scal' (did you mean 'scale'?)"),
    ({"depth": 2.5}, "option 'depth' must be an integer, got 2.5 (float)"),
    ({"depth": True}, "option 'depth' must be an integer, got True (bool)"),
    ({"flag": "yes"}, "option 'flag' must be true or false, got 'yes' (str)"),
    ({"mode": "c"}, "option 'mode' must be one of 'a', 'b', got 'c'"),
    ({"levels": 1.5}, "option 'levels' must be an integer or a string or a list of an integer or null"),
    ({"depth": 0}, "opts: depth must be >= 1, got 0"),
])
def test_errors_name_the_option_and_the_fix(values, message):
    with pytest.raises(OptionsError) as err:
        build_options(_Options, values, "opts")
    assert message in str(err.value)
