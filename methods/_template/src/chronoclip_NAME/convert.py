"""The authors' checkpoint format -> :class:`~chronoclip_NAME.model.NameModel`.

Document here the key map (official -> ours) and every entry dropped on purpose; any other key, a missing
one or a shape that does not fit is an error listing them (``core.serialization.load_state_dict_strict``).
"""

from __future__ import annotations

import os

from chronoclip_NAME.model import NameModel
from chronoclip_NAME.options import NameOptions
from core.clip import clip_from_state_dict
from core.serialization import load_state_dict_strict, safe_load

__all__ = ["load_official_checkpoint"]


def load_official_checkpoint(path: str | os.PathLike, options: NameOptions | None = None) -> NameModel:
    """Eval-ready model from the authors' file (architecture read from the weight shapes)."""
    state = safe_load(path)  # never torch.load(weights_only=False): pickles run code
    clip_state = {k.removeprefix("clip."): v for k, v in state.items() if k.startswith("clip.")}
    model = NameModel(clip_from_state_dict(clip_state), None, options or NameOptions())
    load_state_dict_strict(model, state, f"NAME checkpoint {path}")
    return model.eval()
