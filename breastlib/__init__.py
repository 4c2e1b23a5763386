"""breastlib: zero-shot breast MRI registration with vision foundation models."""

from .displacement import Displacement
from .grid import Grid
from .volume import Volume, load_volume

__all__ = ["Displacement", "Grid", "Volume", "load_volume"]
__version__ = "0.1.0"
