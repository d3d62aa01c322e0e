"""NAME for chronoclip. Paper: <title, venue>. Official code: <repository@commit>.

Where this implementation deliberately differs from the official code: <list, or "nowhere">.

Layout (the same in every method package): ``options.py`` (the options dataclass), ``method.py`` (the
``core.Method`` plugin), ``model.py`` (the ``core.VideoModel``), ``convert.py`` (the authors' checkpoints),
other parts as public modules; this file only re-exports.
"""

from chronoclip_NAME.convert import load_official_checkpoint
from chronoclip_NAME.method import Name
from chronoclip_NAME.model import NameModel
from chronoclip_NAME.options import NameOptions

__all__ = ["Name", "NameModel", "NameOptions", "load_official_checkpoint"]
__version__ = "0.1.0"
