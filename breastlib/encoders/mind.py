"""MIND-SSC: the modality-independent neighbourhood descriptor (self-similarity context).

Heinrich et al., "Towards realtime multimodal fusion for image-guided interventions using
self-similarity context", MICCAI 2013. For each voxel, twelve patch distances between the
pairs of its six face neighbours (at ``dilation`` voxels) that lie sqrt(2) apart are
turned into a descriptor by ``exp(-d / v)`` with ``v`` the local mean distance.

``floor`` suppresses the background before the descriptor is computed: intensities are
mapped by ``max(x - floor, 0) / (1 - floor)``. MR air holds Rician noise while CT air is a
clipped constant; without a floor, the variance normalisation turns MR noise into random
descriptors that match CT fat better than CT air, and a cross-modality registration pulls
tissue into the air (measured on a small T1 -> CT phantom pair: 14.6 % of the body folded
and breast Dice 0.46 without, 0 % and 0.95 with a floor of 0.05; see the book's method
chapter).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from breastlib.profiles import ConvexAdamParams
from breastlib.smoothing import box_smooth

_SIX_NEIGHBOURS = torch.tensor(
    [[0, 1, 1], [1, 1, 0], [1, 0, 1], [1, 1, 2], [2, 1, 1], [1, 2, 1]]
) - 1


def _neighbour_pairs() -> list[tuple[int, int]]:
    pairs = []
    for i, j in itertools.combinations(range(6), 2):
        if int(((_SIX_NEIGHBOURS[i] - _SIX_NEIGHBOURS[j]) ** 2).sum()) == 2:
            pairs.append((i, j))
    return pairs  # twelve pairs


def mind_ssc(
    image: torch.Tensor, *, radius: int = 1, dilation: int = 2, floor: float = 0.0
) -> torch.Tensor:
    """Compute 12-channel MIND-SSC features.

    Parameters
    ----------
    image
        ``(B, 1, X, Y, Z)`` float tensor, intensities normalised to about [0, 1].
    radius
        Patch radius in voxels (box filter of width ``2 * radius + 1``).
    dilation
        Distance of the six neighbours from the centre, in voxels.
    floor
        Background floor in the normalised intensity range, ``[0, 1)``; 0 leaves the
        image as it is.

    Returns
    -------
    torch.Tensor
        ``(B, 12, X, Y, Z)`` descriptor in [0, 1], same device and dtype as ``image``.
    """
    if image.ndim != 5 or image.shape[1] != 1:
        raise ValueError(f"image must be (B, 1, X, Y, Z), got {tuple(image.shape)}")
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"floor must lie in [0, 1), got {floor}")
    if floor > 0.0:
        image = (image - floor).clamp_min(0.0) / (1.0 - floor)
    offsets = (_SIX_NEIGHBOURS * dilation).tolist()
    pairs = _neighbour_pairs()
    x, y, z = image.shape[2:]
    padded = F.pad(image, [dilation] * 6, mode="replicate")

    def shifted(offset: list[int]) -> torch.Tensor:
        """``image`` read at ``x + offset`` (the replicate border beyond its edge)."""
        ox, oy, oz = (o + dilation for o in offset)
        return padded[:, :, ox : ox + x, oy : oy + y, oz : oz + z]

    # One channel at a time into one preallocated volume, then in place: the descriptor
    # of a full-size image (12 x 21 million voxels, 1 GB) needs little more than itself.
    ssd = image.new_empty((image.shape[0], len(pairs), x, y, z))
    for channel, (i, j) in enumerate(pairs):
        distance = (shifted(offsets[i]) - shifted(offsets[j])).pow_(2)
        ssd[:, channel : channel + 1] = box_smooth(distance, kernel=2 * radius + 1, passes=1)
    ssd -= ssd.min(dim=1, keepdim=True).values
    variance = ssd.mean(dim=1, keepdim=True)
    mean_variance = variance.mean()
    variance = variance.clamp(mean_variance * 1e-3, mean_variance * 1e3)
    descriptor = ssd.div_(variance).neg_().exp_()
    return descriptor.div_(descriptor.amax(dim=1, keepdim=True).clamp_min(1e-12))


def mind_volume(array: np.ndarray, params: ConvexAdamParams,
                device: torch.device) -> torch.Tensor:
    """MIND-SSC descriptor of one ``(X, Y, Z)`` normalised array with a profile's radius,
    dilation and background floor: a ``(12, X, Y, Z)`` tensor on ``device``."""
    image = torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(device)[None, None]
    return mind_ssc(image, radius=params.mind_radius, dilation=params.mind_dilation,
                    floor=params.mind_floor)[0]
