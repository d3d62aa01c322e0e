"""chronoclip-stan: STAN, the Spatial-Temporal Auxiliary Network (Liu et al., CVPR 2023), as a chronoclip method.

``core.load_method("stan")`` returns :class:`STAN`; ``STAN().build(clip, num_frames=8)`` a new model on a CLIP
backbone, ``core.load_official("stan", path)`` the authors' mmengine checkpoint converted (see ``convert.py``).
Recognition (class names, cross-entropy) and retrieval (captions, symmetric InfoNCE, R@K / median rank in
:mod:`chronoclip_stan.retrieval`) share the model.
"""

from chronoclip_stan.branch import MAX_FRAMES, STANBranch
from chronoclip_stan.convert import load_official_checkpoint
from chronoclip_stan.method import STAN
from chronoclip_stan.model import TASKS, STANModel
from chronoclip_stan.retrieval import retrieval_metrics

__all__ = ["MAX_FRAMES", "STAN", "STANBranch", "STANModel", "TASKS", "load_official_checkpoint", "retrieval_metrics"]
__version__ = "0.1.0"
