"""Security: the authors' tiny stan checkpoint with a payload spliced in is refused by core.load_official.

The genuine file loads (the golden tests); the same file with one more pickled key that runs a shell command
(plainly, or hidden in torch.storage._load_from_bytes bytes) is refused, naming the file, and nothing runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("chronoclip_stan", reason="chronoclip-stan is not installed")

import core  # noqa: E402
from core.serialization import UnsafeCheckpointError  # noqa: E402
from core.testing import load_from_bytes_payload, shell_payload, splice_payload  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("make_payload", [shell_payload, load_from_bytes_payload], ids=["reduce", "load_from_bytes"])
def test_spliced_official_checkpoint_is_refused(make_payload, tmp_path, official_checkpoints) -> None:
    marker = tmp_path / "PWNED"
    spliced = splice_payload(official_checkpoints["selfattn"], tmp_path / "spliced.pth", make_payload(marker))
    with pytest.raises(UnsafeCheckpointError, match="holds code the project will not run") as info:
        core.load_official("stan", spliced)
    assert str(spliced) in str(info.value)
    assert not marker.exists()
