"""bgrepro: the reproducible companion to "Noise or Signal: The Role of Image Backgrounds in
Object Recognition" (Xiao et al., ICLR 2021).

The folders are the stages of the data flow: `data` (where images come from, the eight variants built
from them, the loaders) -> `registry` (the only door to a model, in any format) and `training` ->
`analyses` (what the paper measures on a model) -> `book` (the chapters' experiments and verdicts) and
`report` (a practitioner's photos and model). Beside them, the basics every stage reads: `variants` (the one
table of variants), `in9` (IN-9's label space), `layout` (the on-disk layout), `io`, `outputs` (a user's
files are safe), `inference`, `distributed`, `profiles` (the tiny / smoke / full scales) and `plots`; `cli` is
the `bgrepro` command on top.
"""

from .in9 import CLASS_FOLDERS
from .profiles import PROFILES, Profile, get_profile
from .variants import NAMES as VARIANTS

__all__ = ["CLASS_FOLDERS", "VARIANTS", "PROFILES", "Profile", "get_profile"]
__version__ = "0.1.0"
