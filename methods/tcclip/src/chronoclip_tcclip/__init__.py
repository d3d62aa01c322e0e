"""chronoclip-tcclip: TC-CLIP (Temporally Contextualized CLIP, Kim et al., ECCV 2024) as a chronoclip method.

Public surface: the ``TCCLIP`` method plugin (entry point ``tcclip``), the ``TCCLIPModel`` it builds,
``wise_ft`` (weight-space ensembling used for the zero-shot results) and ``normalize_class_name``.
"""

from chronoclip_tcclip._method import TCCLIP
from chronoclip_tcclip._model import TCCLIPModel
from chronoclip_tcclip._text import normalize_class_name
from chronoclip_tcclip._wise_ft import WISE_FT_EXCLUDED, wise_ft

__all__ = ["TCCLIP", "WISE_FT_EXCLUDED", "TCCLIPModel", "normalize_class_name", "wise_ft"]
