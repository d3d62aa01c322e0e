"""chronoclip-ila: ILA (Implicit Learnable Alignment, ICCV 2023) as a chronoclip method plugin (``--method ila``)."""

from chronoclip_ila.align import InteractivePointAlignment, alignment_masks, trapezoid
from chronoclip_ila.block import ILABlock, alignment_loss
from chronoclip_ila.convert import (
    from_official_state_dict,
    infer_architecture,
    load_official_checkpoint,
    read_official_checkpoint,
    to_official_state_dict,
)
from chronoclip_ila.method import ILA
from chronoclip_ila.model import ILAModel, ILASSv2Model, jitter_delta_at
from chronoclip_ila.options import ILAOptions, OptimConfig
from chronoclip_ila.xclip import MultiframeIntegrationTransformer, VideoSpecificPrompt

__all__ = [
    "ILA",
    "ILABlock",
    "ILAModel",
    "ILAOptions",
    "ILASSv2Model",
    "InteractivePointAlignment",
    "MultiframeIntegrationTransformer",
    "OptimConfig",
    "VideoSpecificPrompt",
    "alignment_loss",
    "alignment_masks",
    "from_official_state_dict",
    "infer_architecture",
    "jitter_delta_at",
    "load_official_checkpoint",
    "read_official_checkpoint",
    "to_official_state_dict",
    "trapezoid",
]
__version__ = "0.1.0"
