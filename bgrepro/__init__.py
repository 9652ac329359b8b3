"""bgrepro: the reproducible companion to "Noise or Signal: The Role of Image Backgrounds in
Object Recognition" (Xiao et al., ICLR 2021).

Stages, one module each: `synth` (the embedded synthetic IN-9), `composite` (the background /
foreground transformations), `models`; `profiles` holds the tiny / smoke / full scales.
"""

from .classes import CLASS_FOLDERS, HABITATS, VARIANTS
from .profiles import PROFILES, Profile, get_profile

__all__ = ["CLASS_FOLDERS", "HABITATS", "VARIANTS", "PROFILES", "Profile", "get_profile"]
__version__ = "0.1.0"
