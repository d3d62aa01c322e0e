"""Test sessions. `nox -s tests` is what CI runs (it also queues one session per method installed alone)."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests"]

METHODS = ["t2l", "tcclip", "ila", "stan"]
# Each method's own test folder; core's tests live in tests/.
METHOD_TESTS = {name: f"methods/{name}/tests" for name in METHODS}
# The one real multi-process run of the default suite: `deepspeed --num_gpus 2 --module core.train` on CPU.
DEEPSPEED_TWO_RANKS = "tests/train/test_train_multiprocess.py::test_deepspeed_two_cpu_ranks_train_on_disjoint_samples"


@nox.session
def tests(session: nox.Session) -> None:
    """Fast suite + one 2-rank DeepSpeed CPU run with all four methods installed, then each method alone.

    The torchcodec extra is installed so that every decoder backend is tested; without FFmpeg shared libraries
    on the machine (``.ci/run`` installs them where it can) its tests are skipped, the reason listed by -ra.
    """
    session.install(".[test,torchcodec]", *(f"./methods/{name}" for name in METHODS))
    session.run("pytest", "tests", *METHOD_TESTS.values(), *session.posargs)
    if not session.posargs:
        session.run("pytest", "-m", "slow", DEEPSPEED_TWO_RANKS)
        for name in METHODS:
            session.notify(f"method-{name}")


def _method_alone(name: str) -> None:
    def session_fn(session: nox.Session) -> None:
        session.install(".[test]", f"./methods/{name}")
        session.run("python", "-c", (
            "import core; found = set(core.list_methods()); "
            f"assert found == {{'clip', 'vifi', {name!r}}}, found; print('installed methods:', sorted(found))"))
        session.run("pytest", METHOD_TESTS[name], *session.posargs)

    session_fn.__doc__ = f"Fresh env with core + {name} only: its tests pass and no other method is visible."
    nox.session(name=f"method-{name}", default=False)(session_fn)


for _name in METHODS:
    _method_alone(_name)


@nox.session(default=False)
def slow(session: nox.Session) -> None:
    """Distributed (2-rank DeepSpeed, 2-node torchrun) and end-to-end training tests."""
    session.install(".[test]", *(f"./methods/{name}" for name in METHODS))
    session.run("pytest", "-m", "slow", "tests", *METHOD_TESTS.values(), *session.posargs)


@nox.session(default=False)
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".", *session.posargs)
