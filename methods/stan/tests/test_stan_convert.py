"""``to_official_state_dict`` is the inverse of the checkpoint converter, on the authors' tiny checkpoints."""

from __future__ import annotations

import pytest
import torch
from chronoclip_stan.convert import (
    DROPPED_KEYS,
    OUTSIDE_OFFICIAL_MODEL,
    load_official_checkpoint,
    official_state_dict,
    split_official,
    to_official_state_dict,
)

from core.serialization import safe_load


@pytest.mark.parametrize("variant", ["selfattn", "conv"])
def test_to_official_gives_back_the_authors_state_dict(official_checkpoints, variant: str) -> None:
    official = official_state_dict(safe_load(official_checkpoints[variant]))
    model = load_official_checkpoint(official_checkpoints[variant])
    back = to_official_state_dict(model.state_dict())
    assert back.keys() == official.keys() - set(DROPPED_KEYS)
    assert all(torch.equal(back[k], official[k].float()) for k in back)


@pytest.mark.parametrize("variant", ["selfattn", "conv"])
def test_split_official_of_to_official_is_the_identity(official_checkpoints, variant: str) -> None:
    state = load_official_checkpoint(official_checkpoints[variant]).state_dict()
    clip, branch, arch = split_official(to_official_state_dict(state))
    ours = {f"clip.{k}": v for k, v in clip.items()} | {f"branch.{k}": v for k, v in branch.items()}
    assert ours.keys() == state.keys() - set(OUTSIDE_OFFICIAL_MODEL)
    assert all(torch.equal(ours[k], state[k]) for k in ours)
    assert arch["time_module"] == variant


def test_to_official_names_unknown_weights(official_checkpoints) -> None:
    state = load_official_checkpoint(official_checkpoints["selfattn"]).state_dict()
    with pytest.raises(ValueError, match="no place in the official STAN model.*'extra.weight'"):
        to_official_state_dict({**state, "extra.weight": torch.zeros(1)})
