"""bgrepro: the reproducible companion to "Noise or Signal: The Role of Image Backgrounds in
Object Recognition" (Xiao et al., ICLR 2021).

The data flow, one module per stage: `sources` (where images and masks or boxes come from;
`synth` makes the embedded synthetic IN-9, `download` fetches the official one) -> `composite`
(the IN-9 transformations, GrabCut) -> `build` (variants on disk) -> `datasets` (tensors on the
device) -> `models` -> `train` / `evaluate` -> `experiments` -> `results` (cached records) ->
`plots`. `profiles` holds the tiny / smoke / full scales; `cli` is the `bgrepro` command.
"""

from .classes import CLASS_FOLDERS, HABITATS, VARIANTS
from .profiles import PROFILES, Profile, get_profile

__all__ = ["CLASS_FOLDERS", "HABITATS", "VARIANTS", "PROFILES", "Profile", "get_profile"]
__version__ = "0.1.0"
