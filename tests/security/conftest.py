"""Fixtures of the security tests: a marker file a payload would create, and the trainer's tiny-run setup."""

from __future__ import annotations

import pytest


@pytest.fixture
def marker(tmp_path):
    """Path a crafted payload would ``touch``; the tests assert it never appears."""
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), f"a payload ran: {path} was created"


@pytest.fixture(scope="session")
def train_cache(tmp_path_factory):
    """``CHRONOCLIP_CACHE`` for the session: the synthetic dataset is generated once, under tmp."""
    root = tmp_path_factory.mktemp("chronoclip-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHRONOCLIP_CACHE", str(root))
        yield root
