"""Intensity normalisation for feature extraction (the warped image stays raw)."""

from __future__ import annotations

import numpy as np

# CT soft-tissue window (HU) used when an image looks like CT.
CT_WINDOW = (-250.0, 250.0)


def looks_like_ct(array: np.ndarray) -> bool:
    """Heuristic: Hounsfield units have a large negative population (air, lung)."""
    low = float(np.percentile(array, 1.0))
    return low <= -500.0 and float(np.percentile(array, 99.0)) < 4000.0


def normalise_intensity(
    array: np.ndarray, *, percentiles: tuple[float, float] = (0.5, 99.5)
) -> np.ndarray:
    """Map any intensity range to [0, 1] robustly.

    MR images are clipped at the given percentiles (so a few bright vessels or noise
    spikes do not compress the tissue contrast); CT images are windowed to soft tissue.

    Parameters
    ----------
    array
        ``(X, Y, Z)`` raw intensities, any range.

    Returns
    -------
    numpy.ndarray
        ``(X, Y, Z)`` float32 in [0, 1].
    """
    data = np.asarray(array, dtype=np.float32)
    if looks_like_ct(data):
        low, high = CT_WINDOW
    else:
        low, high = (float(v) for v in np.percentile(data, percentiles))
    if high <= low:
        return np.zeros_like(data)
    # In place on one new array: the same values as np.clip((data - low) / (high - low),
    # 0, 1), without three full-size temporaries.
    scaled = np.subtract(data, low)
    scaled /= high - low
    return np.clip(scaled, 0.0, 1.0, out=scaled)
