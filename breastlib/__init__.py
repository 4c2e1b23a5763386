"""breastlib: zero-shot breast MRI registration with vision foundation models."""

from breastlib.displacement import Displacement
from breastlib.grid import Grid
from breastlib.volume import Volume, load_volume

__all__ = ["Displacement", "Grid", "Volume", "load_volume"]
__version__ = "0.1.0"
