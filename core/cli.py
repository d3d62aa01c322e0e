"""One way for every command-line tool to answer bad input: one line naming the problem and the fix, exit 2.

Use in a CLI module::

    from core.cli import ArgumentParser, UserError, run_cli

    def _main(argv: list[str] | None) -> int:
        args = ArgumentParser(prog="chronoclip-x", ...).parse_args(argv)
        if args.frames < 1:
            raise UserError(f"--frames must be >= 1, got {args.frames}")
        ...

    def main(argv: list[str] | None = None) -> int:
        return run_cli(_main, argv, prog="chronoclip-x")

* :func:`run_cli` runs ``main(argv)``; a :class:`UserError`, ``ValueError`` (``ConfigError``,
  ``UnsafeCheckpointError``), ``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError``,
  ``PermissionError`` or ``LookupError`` (``UnknownMethodError``) becomes ``<prog>: error: <message>`` on
  stderr, one line, and exit code 2, with no traceback. ``--debug`` anywhere in ``argv`` (removed before
  ``main`` sees it) lets the exception propagate with its traceback instead. Other exceptions are bugs or
  runtime failures and keep their traceback. Under a multi-rank launcher only rank 0 prints.
* :func:`call_cli` is the same for entry points that return a result (a report, profiles) rather than an exit
  status: it returns ``main``'s value, and a user error is the same one line followed by ``SystemExit(2)``.
* :class:`ArgumentParser` is ``argparse.ArgumentParser`` whose errors (unknown option, missing value, bad
  type or choice) are one line too: ``<prog>: error: <message> (see <prog> --help)``, exit code 2.
* Validate ranges where arguments are read and raise :class:`UserError`: out-of-range values are errors,
  never silently replaced (:func:`check_range` does the usual check, :func:`check_device` a ``--device``).

Tests call ``main(argv)`` in-process and check the return code and the captured stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

__all__ = ["USER_ERRORS", "ArgumentParser", "UserError", "call_cli", "check_device", "check_range", "one_line",
           "run_cli"]


class UserError(ValueError):
    """Bad input; the message names the problem and the fix."""


# Exceptions that mean "the user gave something wrong" (input validation raises these), not "a bug".
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ValueError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, PermissionError, LookupError)


def one_line(error: BaseException) -> str:
    """The exception's message on one line (continuation lines joined with spaces)."""
    text = str(error).strip()
    if isinstance(error, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip()) or type(error).__name__


def _call(main: Callable[[list[str]], Any], argv: Sequence[str] | None, prog: str) -> tuple[bool, Any]:
    """``(True, main(argv))``, or ``(False, None)`` after printing a user error (``--debug``: it propagates)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        return True, main(args)
    except USER_ERRORS as error:
        if debug:
            raise
        if os.environ.get("RANK", "0") == "0":
            print(f"{prog}: error: {one_line(error)}", file=sys.stderr, flush=True)
        return False, None


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None, *, prog: str) -> int:
    """``main(argv)`` with user errors turned into one line on stderr and exit code 2 (module docstring)."""
    ok, code = _call(main, argv, prog)
    if not ok:
        return 2
    return 0 if code is None else int(code)


def call_cli(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None, *, prog: str) -> Any:
    """``main(argv)``'s result; a user error is one line on stderr and ``SystemExit(2)`` (module docstring)."""
    ok, result = _call(main, argv, prog)
    if not ok:
        raise SystemExit(2)
    return result


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line errors (exit code 2) and a documented ``--debug``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true",
                          help="show the full traceback of an error instead of one line")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def check_range(name: str, value: float | None, *, minimum: float | None = None, maximum: float | None = None,
                ) -> None:
    """Raise :class:`UserError` when ``value`` lies outside ``[minimum, maximum]`` (None: unbounded)."""
    if value is None:
        return
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = (f">= {minimum}" if maximum is None else f"<= {maximum}" if minimum is None
                  else f"between {minimum} and {maximum}")
        raise UserError(f"{name} must be {bounds}, got {value}")


def check_device(name: str, value: str | None) -> str | None:
    """``value`` if it names a device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``); else :class:`UserError`."""
    if value is None:
        return None
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise UserError(f"{name} {value!r} is not a device; pass cpu, cuda or cuda:<index>") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{name} {value}: CUDA is not available on this machine; pass {name} cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"{name} {value}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                            f"pass cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UserError(f"{name} {value}: MPS is not available on this machine; pass {name} cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"{name} {value!r} is not supported; pass cpu, cuda or cuda:<index>")
    return value
