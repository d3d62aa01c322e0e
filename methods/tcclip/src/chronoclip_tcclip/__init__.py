"""chronoclip-tcclip: TC-CLIP (Temporally Contextualized CLIP, Kim et al., ECCV 2024) as a chronoclip method.

Public surface: the ``TCCLIP`` method plugin (entry point ``tcclip``), the ``TCCLIPModel`` it builds,
``wise_ft`` (weight-space ensembling used for the zero-shot results) and ``normalize_class_name``.
"""

from chronoclip_tcclip.ensemble import WISE_FT_EXCLUDED, wise_ft
from chronoclip_tcclip.method import TCCLIP
from chronoclip_tcclip.model import TCCLIPModel
from chronoclip_tcclip.text import normalize_class_name

__all__ = ["TCCLIP", "WISE_FT_EXCLUDED", "TCCLIPModel", "normalize_class_name", "wise_ft"]
