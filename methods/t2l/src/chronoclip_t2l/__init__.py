"""chronoclip-t2l: T2L (Temporal Token Learning) as a chronoclip method plugin (``--method t2l``).

The description CSVs, label lists and split lists of the official repository are read by
``core.data.catalog`` (``read_t2l_descriptions``, ``read_label_csv``, ``read_split_file(..., "t2l")``),
which also ships them per dataset.
"""

from chronoclip_t2l.convert import load_official_checkpoint, to_official_state_dict
from chronoclip_t2l.losses import inbatch_kl_loss, tfd_loss
from chronoclip_t2l.method import T2L
from chronoclip_t2l.model import T2LModel

__all__ = [
    "T2L",
    "T2LModel",
    "inbatch_kl_loss",
    "load_official_checkpoint",
    "tfd_loss",
    "to_official_state_dict",
]
__version__ = "0.1.0"
