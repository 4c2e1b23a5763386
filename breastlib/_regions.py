"""The largest connected region of a binary volume, shared by the body masks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected region of a bool array (the array itself where it has
    one region or none; the first of equal largest ones)."""
    labels, count = ndi.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))
